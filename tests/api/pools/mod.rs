//! Tenant pools: opened once however many requests race for them, closed when idle, and one
//! tenant's broken database is that tenant's problem only.

mod budget;
mod on_postgres;

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use silo::tenant::TenantId;

use crate::helpers::{spawn_app, spawn_app_with, Reply, Session, TestApp};

/// Provisions `slug` on the pro plan (roomy limits) with an owner, signed in.
async fn tenant_with_owner(app: &TestApp, slug: &str) -> (TenantId, Session) {
    let reply = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({
                "slug": slug, "plan": "pro",
                "owner_email": "owner@x.com", "owner_password": "owner-password",
            })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().parse().unwrap();
    let session = app
        .tenant(slug)
        .login("owner@x.com", "owner-password")
        .await;
    (id, session)
}

async fn open_pools(app: &TestApp) -> u64 {
    app.state.pools.run_housekeeping().await;
    app.state.pools.open_count()
}

#[tokio::test]
async fn fifty_concurrent_first_requests_open_exactly_one_pool() {
    let app = spawn_app().await;
    let (id, owner) = tenant_with_owner(&app, "acme").await;
    app.state.pools.evict(id).await;
    assert_eq!(open_pools(&app).await, 0, "the tenant starts cold");

    let client = app.tenant("acme");
    let requests = (0..50).map(|_| client.get("/v1/me", &owner.access_token));
    let replies = futures::future::join_all(requests).await;
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["tenant"]["slug"], "acme");
    }
    // One pool holds at most pool.max_connections_per_tenant connections to the database.
    let tenant = app.admin(Method::GET, "/admin/v1/tenants/acme", None).await;
    if let Some(connections) = app.database(&tenant.body).connections().await {
        assert!(
            (1..=4).contains(&connections),
            "{connections} open handles on the database"
        );
    }
    assert_eq!(open_pools(&app).await, 1);
}

/// A sign-up at `slug`, a request that needs the tenant's database.
pub(super) async fn try_signup(app: &TestApp, slug: &str) -> Reply {
    app.tenant(slug)
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "a@x.com", "password": "a-password"}),
        )
        .await
}

#[tokio::test]
async fn each_tenant_gets_its_own_pool() {
    let app = spawn_app().await;
    for slug in ["acme", "globex", "initech"] {
        tenant_with_owner(&app, slug).await;
    }
    assert_eq!(open_pools(&app).await, 3);
}

#[tokio::test]
async fn an_idle_pool_closes_and_reopens_on_the_next_request() {
    let app = spawn_app_with(|s| s.pool.idle_ttl_secs = 1).await;
    let (_, owner) = tenant_with_owner(&app, "acme").await;
    assert_eq!(open_pools(&app).await, 1);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        open_pools(&app).await,
        0,
        "idle for longer than pool.idle_ttl_secs"
    );

    let me = app.tenant("acme").get("/v1/me", &owner.access_token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(open_pools(&app).await, 1);
}

#[tokio::test]
async fn a_pool_in_use_stays_open() {
    let app = spawn_app_with(|s| s.pool.idle_ttl_secs = 2).await;
    let (_, owner) = tenant_with_owner(&app, "acme").await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let me = app.tenant("acme").get("/v1/me", &owner.access_token).await;
        assert_eq!(me.status, 200);
        assert_eq!(open_pools(&app).await, 1, "used every half second");
    }
}

#[tokio::test]
async fn a_missing_database_makes_only_its_own_tenant_unavailable() {
    let app = spawn_app().await;
    let broken = app.create_tenant("broken").await;
    app.create_tenant("healthy").await;
    // Gone behind silo's back, before any request opened its pool.
    let database = app.database(&broken);
    database.remove().await;

    for _ in 0..3 {
        let reply = try_signup(&app, "broken").await;
        reply.assert_unavailable();
        let text = reply.body.to_string();
        assert!(!text.contains(".db"), "no paths in the answer: {text}");
        assert!(
            !text.contains("silo_t_"),
            "no database names in the answer: {text}"
        );
    }
    assert!(
        !database.exists().await,
        "silo did not quietly create an empty database"
    );

    app.tenant("healthy")
        .assert_serves("b@x.com", "b-password")
        .await;
    let ready = crate::helpers::Reply::send(app.request(Method::GET, "/readyz")).await;
    assert_eq!(ready.status, 200);
}

#[tokio::test]
async fn shutting_down_closes_every_pool() {
    let app = spawn_app().await;
    for slug in ["acme", "globex"] {
        tenant_with_owner(&app, slug).await;
    }
    assert_eq!(open_pools(&app).await, 2);
    let state = app.state.clone();
    let addr = app.addr;
    app.shutdown().await;
    state.pools.run_housekeeping().await;
    assert_eq!(state.pools.open_count(), 0);
    let after = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(after.is_err(), "the listener is closed: {after:?}");
}
