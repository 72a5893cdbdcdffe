//! Rolling the master key: start on key A; configure B as the key and A as a previous one,
//! and everything keeps working; rotate the fleet onto B; drop A, and everything still signs
//! in and serves.

use reqwest::Method;
use serde_json::json;

use super::{key_id, kid};
use crate::helpers::{spawn_app_with, tenant_server_url, test_registry, TestApp};

const KEY_A: &str = "master-key-a-0123456789abcdef-0123456789";
const KEY_B: &str = "master-key-b-0123456789abcdef-0123456789";
const EMAIL: &str = "owner@x.test";
const PASSWORD: &str = "owner-password";

/// A silo on the registry and tenant databases under `shared` (or the test's PostgreSQL
/// registry and tenant server), with master key `key` and `previous` keys.
async fn silo(
    shared: &std::path::Path,
    registry: Option<&str>,
    key: &str,
    previous: &[&str],
) -> TestApp {
    let (shared, registry) = (shared.to_owned(), registry.map(str::to_owned));
    let (key, previous): (String, Vec<String>) =
        (key.into(), previous.iter().map(|k| k.to_string()).collect());
    spawn_app_with(move |settings| {
        settings.data_dir = shared.join("data");
        settings.registry.url = registry.unwrap_or_default();
        if tenant_server_url().is_none() {
            settings.servers.get_mut("local").unwrap().url =
                format!("sqlite://{}", shared.join("tenants").display());
        }
        settings.secrets.master_key = key.into();
        settings.secrets.previous_master_keys = previous.into_iter().map(Into::into).collect();
    })
    .await
}

#[tokio::test]
async fn the_master_key_rolls_from_a_to_b_with_nothing_locked_out() {
    let shared = tempfile::tempdir().unwrap();
    let registry = test_registry().await;
    let registry = registry.as_ref().map(|db| db.url.as_str());

    // On key A alone.
    let a = silo(shared.path(), registry, KEY_A, &[]).await;
    let owner = a.create_tenant_with_owner("acme", EMAIL, PASSWORD).await;
    a.create_tenant_with_owner("globex", EMAIL, PASSWORD).await;
    let project = a
        .tenant("acme")
        .create_project(&owner.access_token, "Rocket sled")
        .await;
    let on_a = owner.access_token;
    assert_eq!(kid(&on_a), Some(format!("{}.v1", key_id(KEY_A))));
    a.shutdown().await;

    // B is the key, A a previous one: tenants are still on A, and served as before.
    let ab = silo(shared.path(), registry, KEY_B, &[KEY_A]).await;
    let acme = ab.tenant("acme");
    assert_eq!(
        acme.get(&format!("/v1/projects/{project}"), &on_a)
            .await
            .status,
        200
    );
    let still_a = acme.login(EMAIL, PASSWORD).await.access_token;
    assert_eq!(kid(&still_a), Some(format!("{}.v1", key_id(KEY_A))));
    let status = ab.admin(Method::GET, "/admin/v1/keys", None).await;
    assert_eq!(status.body["key"], key_id(KEY_B));
    assert_eq!(status.body["previous_keys"], json!([key_id(KEY_A)]));
    assert_eq!(status.body["tenants_on_other_keys"], 2, "{}", status.body);

    let report = ab.admin(Method::POST, "/admin/v1/keys/rotate", None).await;
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(report.body["key"], key_id(KEY_B));
    assert_eq!(report.body["tenants"], 2);
    assert_eq!(report.body["rotated"], 2);
    assert_eq!(report.body["remaining"], 0);
    assert_eq!(report.body["failed"], json!([]));
    let status = ab.admin(Method::GET, "/admin/v1/keys", None).await;
    assert_eq!(status.body["tenants_by_key"], json!({ key_id(KEY_B): 2 }));
    assert_eq!(status.body["tenants_on_other_keys"], 0);
    // Again: nothing left to do.
    let again = ab
        .admin(
            Method::POST,
            "/admin/v1/keys/rotate",
            Some(json!({"concurrency": 2})),
        )
        .await;
    assert_eq!(again.body["tenants"], 0, "{}", again.body);
    // A's tokens verify until they expire; new ones are B's.
    assert_eq!(acme.get("/v1/me", &on_a).await.status, 200);
    let on_b = acme.login(EMAIL, PASSWORD).await.access_token;
    assert_eq!(kid(&on_b), Some(format!("{}.v2", key_id(KEY_B))));
    ab.shutdown().await;

    // A removed: everything signs in and serves on B.
    let b = silo(shared.path(), registry, KEY_B, &[]).await;
    let acme = b.tenant("acme");
    assert_eq!(
        acme.get(&format!("/v1/projects/{project}"), &on_b)
            .await
            .status,
        200
    );
    let fresh = acme.login(EMAIL, PASSWORD).await.access_token;
    assert_eq!(acme.get("/v1/projects", &fresh).await.status, 200);
    let globex = b.tenant("globex").login(EMAIL, PASSWORD).await.access_token;
    assert_eq!(b.tenant("globex").get("/v1/me", &globex).await.status, 200);
    b.tenant("globex")
        .assert_serves("new@x.test", "new-password")
        .await;
    // A token of key A is refused once A is gone.
    acme.get("/v1/me", &on_a)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn a_tenant_left_on_a_removed_key_is_recovered_by_rotating_it() {
    let shared = tempfile::tempdir().unwrap();
    let registry = test_registry().await;
    let registry = registry.as_ref().map(|db| db.url.as_str());
    let a = silo(shared.path(), registry, KEY_A, &[]).await;
    let before = a.create_tenant_with_owner("acme", EMAIL, PASSWORD).await;
    a.shutdown().await;

    // A dropped too early: acme cannot be served, and says so in a status, not a hang.
    let b = silo(shared.path(), registry, KEY_B, &[]).await;
    let acme = b.tenant("acme");
    let login = acme.try_login(EMAIL, PASSWORD).await;
    assert!(
        [500, 503].contains(&login.status),
        "{} {}",
        login.status,
        login.body
    );
    // 503 where the database cannot be opened (a PostgreSQL role's password), else 401.
    let me = acme.get("/v1/me", &before.access_token).await;
    assert!([401, 503].contains(&me.status), "{} {}", me.status, me.body);

    let rotated = b
        .admin(Method::POST, "/admin/v1/tenants/acme/rotate-keys", None)
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(rotated.body["from"]["key"], key_id(KEY_A));
    assert_eq!(
        rotated.body["to"],
        json!({"key": key_id(KEY_B), "version": 2})
    );
    let token = acme.login(EMAIL, PASSWORD).await.access_token;
    assert_eq!(acme.get("/v1/me", &token).await.status, 200);
}
