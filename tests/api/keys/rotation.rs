//! Rotating one tenant's keys: requests going on meanwhile are never refused (on PostgreSQL
//! tenants the role's password changes under them), on this router and on another one; the
//! rotation is in the tenant's audit log; refusals change nothing.

use std::{
    path::Path,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use reqwest::Method;
use serde_json::json;

use super::{keep_requesting, rotate, rotate_reply, rounds_pass};
use crate::helpers::{fresh_database, spawn_app, spawn_app_with, tenant_server_url, TestApp};

const EMAIL: &str = "owner@acme.test";
const PASSWORD: &str = "owner-password";

#[tokio::test]
async fn requests_going_on_during_rotations_are_never_refused() {
    let app = spawn_app().await;
    app.create_tenant_with_owner("acme", EMAIL, PASSWORD).await;
    let acme = app.tenant("acme");
    let (stop, rounds) = (AtomicBool::new(false), AtomicU64::new(0));
    let rotations = async {
        for _ in 0..3 {
            rounds_pass(&rounds, 2).await;
            rotate(&app, "acme").await;
        }
        rounds_pass(&rounds, 2).await;
        stop.store(true, Ordering::Release);
    };
    let (refused, ()) = tokio::join!(
        keep_requesting(&acme, EMAIL, PASSWORD, &stop, &rounds),
        rotations
    );
    assert!(refused.is_empty(), "refused during rotations: {refused:?}");
}

/// A router on the PostgreSQL registry `registry` whose tenants live on `server` (else on
/// the test's tenant server, else in `shared`), with a cache that would keep rows for minutes.
pub async fn router(registry: &str, shared: &Path, server: Option<String>) -> TestApp {
    let (registry, shared) = (registry.to_owned(), shared.to_owned());
    spawn_app_with(move |settings| {
        settings.registry.url = registry;
        settings.registry.cache_ttl_secs = 300;
        settings.servers.get_mut("local").unwrap().url = server
            .or_else(tenant_server_url)
            .unwrap_or_else(|| format!("sqlite://{}", shared.join("tenants").display()));
    })
    .await
}

/// Rotates acme three times through `one` while requests go on through `one` and `other`;
/// asserts none was refused.
pub async fn rotate_under_requests_on_two_routers(one: &TestApp, other: &TestApp) {
    one.create_tenant_with_owner("acme", EMAIL, PASSWORD).await;
    let (on_one, on_other) = (one.tenant("acme"), other.tenant("acme"));
    let (stop, rounds) = (AtomicBool::new(false), AtomicU64::new(0));
    let rounds_on_one = AtomicU64::new(0);
    // Each rotation waits for a new login through both routers: a token two rotations old
    // is refused by design.
    let both_pass = || async {
        tokio::join!(rounds_pass(&rounds, 2), rounds_pass(&rounds_on_one, 2));
    };
    let rotations = async {
        for _ in 0..3 {
            both_pass().await;
            rotate(one, "acme").await;
        }
        both_pass().await;
        stop.store(true, Ordering::Release);
    };
    let (through_other, through_one, ()) = tokio::join!(
        keep_requesting(&on_other, EMAIL, PASSWORD, &stop, &rounds),
        keep_requesting(&on_one, EMAIL, PASSWORD, &stop, &rounds_on_one),
        rotations
    );
    assert!(
        through_other.is_empty(),
        "refused through the other router: {through_other:?}"
    );
    assert!(
        through_one.is_empty(),
        "refused through the rotating router: {through_one:?}"
    );
}

#[tokio::test]
async fn requests_through_another_router_are_never_refused_while_one_rotates() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let one = router(&db.url, shared.path(), None).await;
    let other = router(&db.url, shared.path(), None).await;
    rotate_under_requests_on_two_routers(&one, &other).await;
}

#[tokio::test]
async fn a_rotation_is_in_the_tenants_audit_log() {
    let app = spawn_app().await;
    app.create_tenant_with_owner("acme", EMAIL, PASSWORD).await;
    let rotated = rotate(&app, "acme").await;
    let owner = app.tenant("acme").login(EMAIL, PASSWORD).await;
    let audit = app
        .tenant("acme")
        .get("/v1/audit", &owner.access_token)
        .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let entry = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "tenant.keys_rotated")
        .unwrap_or_else(|| panic!("no tenant.keys_rotated in {}", audit.body))
        .clone();
    assert_eq!(entry["actor_kind"], "operator");
    assert_eq!(entry["details"]["from"], rotated["from"]);
    assert_eq!(entry["details"]["to"], rotated["to"]);
}

#[tokio::test]
async fn rotating_an_unknown_or_unready_tenant_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    rotate_reply(&app, "nobody")
        .await
        .assert_error(404, "not_found");
    // A seed that fails leaves the tenant provisioning.
    let made = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"slug": "broke", "plan": "broken"})),
        )
        .await;
    assert_eq!(made.status, 500, "{}", made.body);
    rotate_reply(&app, "broke")
        .await
        .assert_error(409, "conflict");
    let row = app
        .state
        .registry
        .load(&silo::tenant::Slug::parse_shape("broke").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.credentials_version, 1, "nothing changed");

    for body in [
        json!({"concurrency": 0}),
        json!({"concurrency": 65}),
        json!({"bogus": 1}),
    ] {
        let reply = app
            .admin(Method::POST, "/admin/v1/keys/rotate", Some(body.clone()))
            .await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.body);
        assert!(reply.body["error"]["message"].is_string(), "{}", reply.body);
    }
    let status = app.admin(Method::GET, "/admin/v1/keys", None).await;
    assert_eq!(status.body["tenants_on_other_keys"], 0, "{}", status.body);
}
