//! Tenants whose database schema is behind the router's: migrated when their pool opens, or
//! refused until `silo migrate` has run; never served an old schema.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with, Session, TestApp};

/// Makes acme's database look provisioned by an older silo: without the team tables (tenant
/// migration 2) and recorded at schema 1 in the registry.
async fn age_acme(app: &TestApp) -> Value {
    let tenant = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    let record = silo::control::find(&app.state, "acme").await.unwrap();
    app.state.pools.evict(record.id).await;
    let url = format!("sqlite://{}", app.database_file(&tenant).display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for statement in [
        "DROP TABLE invitations",
        "DROP TABLE api_tokens",
        "DROP TABLE audit_log",
        "DELETE FROM _sqlx_migrations WHERE version > 1",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
    app.state
        .registry
        .set_schema_version(&record, 1)
        .await
        .unwrap();
    tenant
}

async fn acme_with_owner(app: &TestApp) -> Session {
    app.create_tenant_with_owner("acme", "owner@acme.test", "owner-password")
        .await
}

#[tokio::test]
async fn a_tenant_behind_the_schema_is_migrated_when_its_pool_opens() {
    let app = spawn_app().await;
    let owner = acme_with_owner(&app).await;
    age_acme(&app).await;
    let audit = app
        .tenant("acme")
        .get("/v1/audit", &owner.access_token)
        .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let tenant = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    assert_eq!(
        tenant["schema_version"],
        silo::schema::tenant_target_version()
    );
}

#[tokio::test]
async fn without_migrate_on_open_a_tenant_behind_is_unavailable_until_migrated() {
    let app = spawn_app_with(|s| s.migrations.on_open = false).await;
    let owner = acme_with_owner(&app).await;
    app.create_tenant("globex").await;
    age_acme(&app).await;
    let refused = app
        .tenant("acme")
        .get("/v1/audit", &owner.access_token)
        .await;
    refused.assert_error(503, "tenant_unavailable");
    assert!(refused.headers.contains_key("retry-after"));
    let other = app
        .tenant("globex")
        .send(Method::GET, "/v1/me", None, None)
        .await;
    assert_eq!(other.status, 401, "other tenants keep working");

    let options = silo::control::FanoutOptions {
        concurrency: 2,
        tenants: vec![],
        dry_run: false,
    };
    let report = silo::control::migrate(&app.state, &options, |_| {})
        .await
        .unwrap();
    assert_eq!(report.failed(), 0);
    let served = app
        .tenant("acme")
        .get("/v1/audit", &owner.access_token)
        .await;
    assert_eq!(served.status, 200, "{}", served.body);
}
