//! Rotation on a PostgreSQL server that checks passwords (a cluster of the test's own, with
//! `scram-sha-256`; the shared test servers trust every login): the role's password really
//! changes, and routers that have not read the change yet, or that serve on throughout, are
//! never refused.

use reqwest::Method;
use silo::{
    control,
    secrets::{Purpose, Secrets},
    tenant::{Slug, TenantId},
    AppState,
};
use sqlx::{Connection, PgConnection};

use super::{rotation, MASTER_KEY};
use crate::helpers::{fresh_database, spawn_app_with, Cluster, TestApp};

const EMAIL: &str = "owner@acme.test";
const PASSWORD: &str = "owner-password";

fn acme() -> Slug {
    Slug::parse_shape("acme").unwrap()
}

/// Whether the tenant's role logs in on `cluster` with its password of `version`.
async fn role_logs_in(cluster: &Cluster, tenant: &serde_json::Value, version: i64) -> bool {
    let id: TenantId = tenant["id"].as_str().unwrap().parse().unwrap();
    let role = tenant["database"].as_str().unwrap();
    let secrets = Secrets::from_bytes(MASTER_KEY.as_bytes().to_vec());
    let password = hex::encode(secrets.derive_versioned(Purpose::Database, id, version));
    let mut url = url::Url::parse(&cluster.admin_url()).unwrap();
    url.set_username(role).unwrap();
    url.set_password(Some(&password)).unwrap();
    url.set_path(&format!("/{role}"));
    PgConnection::connect(url.as_str()).await.is_ok()
}

#[tokio::test]
async fn a_router_that_has_not_read_the_rotation_yet_still_connects_and_verifies() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let server = cluster.admin_url();
    // A cache that keeps the old row (on a SQLite registry nobody tells it otherwise).
    let app: TestApp = spawn_app_with(move |settings| {
        settings.servers.get_mut("local").unwrap().url = server;
        settings.registry.cache_ttl_secs = 300;
    })
    .await;
    let owner = app.create_tenant_with_owner("acme", EMAIL, PASSWORD).await;
    let tenant = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    let acme_client = app.tenant("acme");
    assert_eq!(
        acme_client.get("/v1/me", &owner.access_token).await.status,
        200
    );

    // Another process on the same registry and servers rotates acme.
    let other = AppState::build(app.state.settings.clone()).await.unwrap();
    let rotated = control::rotate_keys(&other, "acme").await.unwrap();
    assert_eq!(rotated.to.version, 2);
    assert!(
        !role_logs_in(&cluster, &tenant, 1).await,
        "the old password is refused"
    );
    assert!(
        role_logs_in(&cluster, &tenant, 2).await,
        "the new password logs in"
    );

    // This router's pool closes (idle, say): its next connection logs in as the role, whose
    // password is now version 2's, while this router may still hold version 1's row.
    let id: TenantId = tenant["id"].as_str().unwrap().parse().unwrap();
    app.state.pools.evict(id).await;
    let me = acme_client.get("/v1/me", &owner.access_token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let login = acme_client.try_login(EMAIL, PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.body);

    // A token of the version the other process moved acme to verifies here already.
    let record = other.registry.load(&acme()).await.unwrap().unwrap();
    let user = {
        let mut conn = other
            .pools
            .get(&record)
            .await
            .unwrap()
            .acquire()
            .await
            .unwrap();
        silo::identity::User::by_id(&mut conn, &owner.user_id)
            .await
            .unwrap()
            .unwrap()
    };
    let (v2, _) = other.access_tokens.issue(&record, &user, 60).unwrap();
    assert_eq!(acme_client.get("/v1/me", &v2).await.status, 200);
    other.close().await;
}

#[tokio::test]
async fn routers_serving_on_a_server_that_checks_passwords_are_never_refused_during_rotations() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let Some(db) = fresh_database().await else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let one = rotation::router(&db.url, shared.path(), Some(cluster.admin_url())).await;
    let other = rotation::router(&db.url, shared.path(), Some(cluster.admin_url())).await;
    rotation::rotate_under_requests_on_two_routers(&one, &other).await;
    let tenant = one
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    assert!(
        role_logs_in(&cluster, &tenant, 4).await,
        "three rotations later"
    );
    assert!(!role_logs_in(&cluster, &tenant, 3).await);
}

#[tokio::test]
async fn a_pool_opened_before_two_rotations_gives_way_to_one_on_the_new_password() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let server = cluster.admin_url();
    let app: TestApp = spawn_app_with(move |settings| {
        settings.servers.get_mut("local").unwrap().url = server;
    })
    .await;
    let owner = app.create_tenant_with_owner("acme", EMAIL, PASSWORD).await;
    let tenant = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    let acme_client = app.tenant("acme");
    assert_eq!(
        acme_client.get("/v1/me", &owner.access_token).await.status,
        200
    );
    rotation_twice(&app).await;
    // The pool's connections end (the server restarted them, say): new ones need version 3's
    // password, which a pool made for version 1 (and its next, 2) would not know.
    let mut admin = PgConnection::connect(&cluster.admin_url()).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
        .bind(tenant["database"].as_str().unwrap())
        .execute(&mut admin)
        .await
        .unwrap();
    let login = acme_client.login(EMAIL, PASSWORD).await;
    let me = acme_client.get("/v1/me", &login.access_token).await;
    assert_eq!(me.status, 200, "{}", me.body);
}

async fn rotation_twice(app: &TestApp) {
    for version in [2, 3] {
        let rotated = super::rotate(app, "acme").await;
        assert_eq!(rotated["to"]["version"], version);
    }
}
