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
    app.database(&tenant)
        .execute(
            "DROP TABLE invitations; DROP TABLE api_tokens; DROP TABLE audit_log;
             DELETE FROM _sqlx_migrations WHERE version > 1;",
        )
        .await;
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
        silo::schema::TenantSchema::built_in().target_version()
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
    refused.assert_unavailable();
    let other = app
        .tenant("globex")
        .send(Method::GET, "/v1/me", None, None)
        .await;
    assert_eq!(other.status, 401, "other tenants keep working");

    let options = silo::control::FanoutOptions {
        concurrency: 2,
        ..Default::default()
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

fn everyone() -> silo::control::FanoutOptions {
    silo::control::FanoutOptions::default()
}

async fn status_of(app: &TestApp, slug: &str) -> Value {
    app.admin(Method::GET, &format!("/admin/v1/tenants/{slug}"), None)
        .await
        .body
}

#[tokio::test]
async fn a_migration_run_never_lifts_a_suspension_whether_it_fails_or_succeeds() {
    let app = spawn_app().await;
    acme_with_owner(&app).await;
    app.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    let tenant = age_acme(&app).await;

    // The database is away: the run fails for acme, which stays suspended with the reason.
    let database = app.database(&tenant);
    let aside = database.take_away("aside").await;
    let report = silo::control::migrate(&app.state, &everyone(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.failed(), 1);
    let after_failure = status_of(&app, "acme").await;
    assert_eq!(after_failure["status"], "suspended", "{after_failure}");
    assert!(after_failure["last_error"].is_string());

    aside.put_back(&database).await;
    let report = silo::control::migrate(&app.state, &everyone(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.failed(), 0);
    let after_success = status_of(&app, "acme").await;
    assert_eq!(after_success["status"], "suspended", "{after_success}");
    assert_eq!(
        after_success["schema_version"],
        silo::schema::TenantSchema::built_in().target_version()
    );
    app.tenant("acme")
        .send(Method::GET, "/v1/me", None, None)
        .await
        .assert_error(403, "tenant_suspended");
}

#[tokio::test]
async fn a_tenant_left_migrating_by_a_crash_is_finished_by_the_next_run() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    let record = silo::control::find(&app.state, "acme").await.unwrap();
    // A run stopped between migrating and recording: the version is current, the status is not.
    app.state
        .registry
        .set_status(&record, silo::tenant::Status::Migrating, None)
        .await
        .unwrap();
    app.tenant("acme")
        .send(Method::GET, "/v1/me", None, None)
        .await
        .assert_error(503, "tenant_unavailable");
    let report = silo::control::migrate(&app.state, &everyone(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.failed(), 0);
    assert_eq!(status_of(&app, "acme").await["status"], "active");
}

#[tokio::test]
async fn concurrent_runs_over_the_same_tenants_do_not_fail_them() {
    let app = spawn_app().await;
    acme_with_owner(&app).await;
    age_acme(&app).await;
    let twice = silo::control::FanoutOptions {
        concurrency: 2,
        tenants: vec!["acme".into(), "acme".into()],
        ..Default::default()
    };
    let all = everyone();
    let (a, b) = tokio::join!(
        silo::control::migrate(&app.state, &twice, |_| {}),
        silo::control::migrate(&app.state, &all, |_| {}),
    );
    assert_eq!(a.unwrap().failed() + b.unwrap().failed(), 0);
    let acme = status_of(&app, "acme").await;
    assert_eq!(acme["status"], "active", "{acme}");
    assert_eq!(
        acme["schema_version"],
        silo::schema::TenantSchema::built_in().target_version()
    );
}
