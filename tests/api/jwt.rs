//! Attacks on access tokens: each is `401 unauthorized`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use silo::{
    secrets::{Purpose, Secrets},
    tenant::TenantId,
};

use crate::helpers::{spawn_app, TestApp};

const MASTER_KEY: &str = "test-master-key-0123456789abcdef-0123456789";

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Signs `claims` with the real key of `tenant_id`, as only silo could.
fn sign_for(tenant_id: &str, claims: &Value) -> String {
    let secrets = Secrets::from_bytes(MASTER_KEY.as_bytes().to_vec());
    let key = secrets.derive(Purpose::Jwt, tenant_id.parse::<TenantId>().unwrap());
    encode(&Header::default(), claims, &EncodingKey::from_secret(&key)).unwrap()
}

async fn setup() -> (TestApp, String, String, Value) {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let session = app.tenant("acme").signup("ivy@x.com", "ivy-password").await;
    let claims = decode_part(session.access_token.split('.').nth(1).unwrap());
    (
        app,
        acme["id"].as_str().unwrap().to_owned(),
        session.access_token,
        claims,
    )
}

#[tokio::test]
async fn a_genuine_token_works() {
    let (app, _, token, _) = setup().await;
    assert_eq!(app.tenant("acme").get("/v1/me", &token).await.status, 200);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (app, _, token, claims) = setup().await;
    let _ = token;
    let unsigned = format!(
        "{}.{}.",
        encode_part(&json!({"alg": "none", "typ": "JWT"})),
        encode_part(&claims)
    );
    app.tenant("acme")
        .get("/v1/me", &unsigned)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn a_flipped_signature_byte_is_refused() {
    let (app, _, token, _) = setup().await;
    let (head, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 0x01;
    let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes));
    app.tenant("acme")
        .get("/v1/me", &forged)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn an_edited_tid_is_refused_everywhere() {
    let (app, _, token, mut claims) = setup().await;
    let globex = app
        .admin(reqwest::Method::GET, "/admin/v1/tenants/globex", None)
        .await;
    claims["tid"] = globex.body["id"].clone();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = encode_part(&claims);
    let edited = parts.join(".");
    app.tenant("acme")
        .get("/v1/me", &edited)
        .await
        .assert_error(401, "unauthorized");
    app.tenant("globex")
        .get("/v1/me", &edited)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn an_edited_role_is_refused() {
    let (app, _, token, mut claims) = setup().await;
    claims["role"] = json!("owner");
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = encode_part(&claims);
    app.tenant("acme")
        .get("/v1/me", &parts.join("."))
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let (app, acme_id, _, mut claims) = setup().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    claims["iat"] = json!(now - 120);
    claims["exp"] = json!(now - 60);
    let expired = sign_for(&acme_id, &claims);
    app.tenant("acme")
        .get("/v1/me", &expired)
        .await
        .assert_error(401, "unauthorized");
    // The same claims, not yet expired, pass: the refusal above was about expiry only.
    claims["exp"] = json!(now + 60);
    assert_eq!(
        app.tenant("acme")
            .get("/v1/me", &sign_for(&acme_id, &claims))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_token_missing_a_claim_is_refused() {
    let (app, acme_id, _, claims) = setup().await;
    for claim in ["tid", "sub", "exp", "jti", "role", "iat"] {
        let mut partial = claims.clone();
        partial.as_object_mut().unwrap().remove(claim);
        app.tenant("acme")
            .get("/v1/me", &sign_for(&acme_id, &partial))
            .await
            .assert_error(401, "unauthorized");
    }
}

#[tokio::test]
async fn a_token_signed_with_another_tenants_key_is_refused_whatever_its_tid() {
    let (app, acme_id, _, mut claims) = setup().await;
    let globex = app
        .admin(reqwest::Method::GET, "/admin/v1/tenants/globex", None)
        .await;
    let globex_id = globex.body["id"].as_str().unwrap();
    // Claims say acme, key is globex's.
    claims["tid"] = json!(acme_id);
    app.tenant("acme")
        .get("/v1/me", &sign_for(globex_id, &claims))
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn garbage_and_missing_bearer_tokens_are_refused() {
    let (app, _, _, _) = setup().await;
    let client = app.tenant("acme");
    for token in ["garbage", "a.b.c", "eyJ.eyJ.", &"x".repeat(5000)] {
        client
            .get("/v1/me", token)
            .await
            .assert_error(401, "unauthorized");
    }
    client
        .send(reqwest::Method::GET, "/v1/me", None, None)
        .await
        .assert_error(401, "unauthorized");
}
