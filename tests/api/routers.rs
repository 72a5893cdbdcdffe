//! Several routers on one PostgreSQL registry, as a deployment behind a load balancer runs them:
//! a change made through one router (suspend, resume, a domain, a deletion) holds on the other
//! within a second, though the other's cache would keep its entry for minutes, and a router
//! whose change listener lost its connection catches up once it is back.

use std::{path::Path, time::Duration};

use reqwest::Method;
use serde_json::json;
use sqlx::Row;
use tokio::time::Instant;

use crate::helpers::{fresh_database, spawn_app_with, Reply, TestApp};

/// The bound: a change made through one router holds on every router within this.
const WITHIN: Duration = Duration::from_secs(1);

/// A router on the registry at `registry`, with tenant databases in `shared` (every router
/// reaches the same files) and a cache that would otherwise keep entries for five minutes.
async fn router(registry: &str, shared: &Path) -> TestApp {
    let (registry, shared) = (registry.to_owned(), shared.to_owned());
    spawn_app_with(move |settings| {
        settings.registry.url = registry;
        settings.registry.cache_ttl_secs = 300;
        settings.servers.get_mut("local").unwrap().url =
            format!("sqlite://{}", shared.join("tenants").display());
    })
    .await
}

/// Asks `ask` until its answer has `status`, for at most [`WITHIN`]; panics with the last
/// answer otherwise.
async fn answers_within<F, Fut>(what: &str, status: u16, mut ask: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let deadline = Instant::now() + WITHIN;
    loop {
        let reply = ask().await;
        if reply.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {} {} after {WITHIN:?}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two routers on one fresh registry, with tenant `acme` made through `one` and already served
/// (so cached) by `other`; `token` is acme's owner's.
struct Routers {
    db: crate::helpers::TestDatabase,
    _shared: tempfile::TempDir,
    one: TestApp,
    other: TestApp,
    token: String,
}

async fn two_routers_serving_acme() -> Option<Routers> {
    let db = fresh_database().await?;
    let shared = tempfile::tempdir().unwrap();
    let one = router(&db.url, shared.path()).await;
    let other = router(&db.url, shared.path()).await;
    let owner = one
        .create_tenant_with_owner("acme", "owner@acme.test", "owner-password")
        .await;
    let me = other
        .tenant("acme")
        .get("/v1/me", &owner.access_token)
        .await;
    assert_eq!(me.status, 200, "{}", me.body);
    Some(Routers {
        db,
        _shared: shared,
        one,
        other,
        token: owner.access_token,
    })
}

#[tokio::test]
async fn a_change_through_one_router_holds_on_the_other_within_a_second() {
    let Some(Routers {
        db: _db,
        _shared,
        one,
        other,
        token,
    }) = two_routers_serving_acme().await
    else {
        return;
    };
    let acme = other.tenant("acme");

    let suspended = one
        .admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    answers_within("suspended through one router", 403, || {
        acme.get("/v1/me", &token)
    })
    .await;
    acme.get("/v1/me", &token)
        .await
        .assert_error(403, "tenant_suspended");

    one.admin(Method::POST, "/admin/v1/tenants/acme/resume", None)
        .await;
    answers_within("resumed through one router", 200, || {
        acme.get("/v1/me", &token)
    })
    .await;

    // A custom domain the other router has just looked up, and cached as unknown.
    let by_domain = || {
        other
            .client
            .get(other.url("/v1/me"))
            .header("host", "app.acme.example")
            .bearer_auth(&token)
            .send()
    };
    let unknown = Reply::from(by_domain().await.unwrap()).await;
    unknown.assert_error(404, "tenant_not_found");
    let added = one
        .admin(
            Method::POST,
            "/admin/v1/tenants/acme/domains",
            Some(json!({"domain": "app.acme.example"})),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    answers_within("a domain added through one router", 200, || async {
        Reply::from(by_domain().await.unwrap()).await
    })
    .await;

    let deleted = one
        .admin(Method::DELETE, "/admin/v1/tenants/acme?confirm=acme", None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    answers_within("deleted through one router", 404, || {
        acme.get("/v1/me", &token)
    })
    .await;
    acme.get("/v1/me", &token)
        .await
        .assert_error(404, "tenant_not_found");
    one.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn a_router_whose_listener_lost_its_connection_catches_up() {
    let Some(Routers {
        db,
        _shared,
        one,
        other,
        token,
    }) = two_routers_serving_acme().await
    else {
        return;
    };
    let acme = other.tenant("acme");
    // Every router's listener connection is cut, as a failover or a connection reaper would.
    let mut conn = db.connect().await;
    let listening = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                     AND application_name = 'silo-listener'";
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlx::query(listening)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .len()
        < 2
    {
        assert!(Instant::now() < deadline, "the two routers never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cut = sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid) AS cut FROM ({listening}) AS listeners"
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        cut.iter().all(|row| row.get::<bool, _>("cut")),
        "the listeners' connections were terminated"
    );

    one.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    answers_within("suspended while the other router reconnected", 403, || {
        acme.get("/v1/me", &token)
    })
    .await;
    // And it listens again: the next change arrives as any other.
    one.admin(Method::POST, "/admin/v1/tenants/acme/resume", None)
        .await;
    answers_within("resumed after the reconnection", 200, || {
        acme.get("/v1/me", &token)
    })
    .await;
    one.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn with_the_registry_unreachable_cached_tenants_keep_serving_and_readyz_says_so() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let app = router(&db.url, shared.path()).await;
    let owner = app
        .create_tenant_with_owner("acme", "owner@acme.test", "owner-password")
        .await;
    app.create_tenant("globex").await;
    let acme = app.tenant("acme");
    assert_eq!(acme.get("/v1/me", &owner.access_token).await.status, 200);
    let ready = || async { Reply::send(app.request(Method::GET, "/readyz")).await };
    assert_eq!(ready().await.status, 200);

    // No new connection to the registry's database, and the router's own ones cut.
    let mut conn = db.connect_admin().await;
    sqlx::query(&format!(
        "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
        db.name()
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(db.name())
        .execute(&mut conn)
        .await
        .unwrap();

    assert_eq!(ready().await.status, 503, "the registry is unreachable");
    let served = acme.get("/v1/me", &owner.access_token).await;
    assert_eq!(
        served.status, 200,
        "a cached tenant keeps serving: {}",
        served.body
    );
    app.tenant("globex")
        .get("/v1/me", "no-token")
        .await
        .assert_unavailable();

    sqlx::query(&format!(
        "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
        db.name()
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready().await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "the router never saw the registry again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.shutdown().await;
}
