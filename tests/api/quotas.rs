//! Plan quotas (`max_users`, `max_projects`, `max_database_bytes` in `plan.toml`) answered
//! with `403 quota_exceeded` naming the quota, one tenant's use never counted against another's;
//! and usage: requests served per tenant, in its stats and in the fleet view sorted by any
//! measure.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Reply, TestApp};

/// Adds plans `quota` (3 users, 2 projects) and `tiny` (a database of 1 byte: full at once).
fn with_quota_plans(settings: &mut silo::Settings) {
    let plans = [
        ("quota", "open_signup = true\nrequests_per_second = 100000\nburst = 100000\nmax_concurrent_requests = 1000\nmax_users = 3\nmax_projects = 2\n"),
        ("tiny", "open_signup = true\nrequests_per_second = 100000\nburst = 100000\nmax_concurrent_requests = 1000\nmax_database_bytes = 1\n"),
    ];
    for (plan, toml) in plans {
        let folder = settings.templates_dir.join(plan);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("plan.toml"), toml).unwrap();
        std::fs::write(folder.join("seed.sql"), "").unwrap();
    }
}

async fn tenant_on(app: &TestApp, slug: &str, plan: &str) -> crate::helpers::Session {
    app.create_tenant_with_owner_and(
        slug,
        &format!("owner@{slug}.test"),
        "owner-password",
        json!({ "plan": plan }),
    )
    .await
}

#[track_caller]
fn assert_quota(reply: &Reply, quota: &str) {
    reply.assert_error(403, "quota_exceeded");
    assert_eq!(reply.body["error"]["quota"], quota, "{}", reply.body);
}

async fn signup(app: &TestApp, slug: &str, email: &str) -> Reply {
    app.tenant(slug)
        .post(
            "/v1/auth/signup",
            None,
            json!({ "email": email, "password": "a-password" }),
        )
        .await
}

async fn new_project(app: &TestApp, slug: &str, token: &str, name: &str) -> Reply {
    app.tenant(slug)
        .post("/v1/projects", Some(token), json!({ "name": name }))
        .await
}

#[tokio::test]
async fn quotas_are_each_tenants_own_and_refuse_only_what_goes_beyond() {
    let app = spawn_app_with(with_quota_plans).await;
    let acme = tenant_on(&app, "acme", "quota").await;
    let globex = tenant_on(&app, "globex", "quota").await;

    // Users: the owner and two more; the fourth is refused, by sign-up and by invitation.
    for n in 0..2 {
        let joined = signup(&app, "acme", &format!("user{n}@acme.test")).await;
        assert_eq!(joined.status, 201, "{}", joined.body);
    }
    assert_quota(&signup(&app, "acme", "user2@acme.test").await, "max_users");
    let invited = app
        .tenant("acme")
        .post(
            "/v1/invitations",
            Some(&acme.access_token),
            json!({ "email": "late@acme.test", "role": "member" }),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.body);
    let token = invited.body["token"].as_str().unwrap().to_owned();
    let app = &app;
    let accept = |token: String| async move {
        app.tenant("acme")
            .post(
                "/v1/invitations/accept",
                None,
                json!({ "token": token, "password": "a-password" }),
            )
            .await
    };
    assert_quota(&accept(token.clone()).await, "max_users");
    // Globex is not full for acme being full.
    let theirs = signup(app, "globex", "user0@globex.test").await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);

    // Room made, the unspent invitation works.
    let members = app
        .tenant("acme")
        .get("/v1/members", &acme.access_token)
        .await;
    let someone = members.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "user0@acme.test")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let removed = app
        .tenant("acme")
        .delete(&format!("/v1/members/{someone}"), &acme.access_token)
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let accepted = accept(token).await;
    assert_eq!(accepted.status, 201, "{}", accepted.body);

    // Projects: two, then refused; one deleted, one more fits.
    let first = new_project(app, "acme", &acme.access_token, "one").await;
    assert_eq!(first.status, 201);
    assert_eq!(
        new_project(app, "acme", &acme.access_token, "two")
            .await
            .status,
        201
    );
    assert_quota(
        &new_project(app, "acme", &acme.access_token, "three").await,
        "max_projects",
    );
    assert_eq!(
        new_project(app, "globex", &globex.access_token, "theirs")
            .await
            .status,
        201
    );
    let id = first.body["id"].as_str().unwrap();
    app.tenant("acme")
        .delete(&format!("/v1/projects/{id}"), &acme.access_token)
        .await;
    assert_eq!(
        new_project(app, "acme", &acme.access_token, "three")
            .await
            .status,
        201
    );
    // Reads are never refused.
    let listed = app
        .tenant("acme")
        .get("/v1/projects", &acme.access_token)
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn adds_at_once_never_go_beyond_the_quota() {
    let app = spawn_app_with(with_quota_plans).await;
    let acme = tenant_on(&app, "acme", "quota").await;
    let tries = (0..12).map(|n| {
        let (app, token) = (&app, acme.access_token.clone());
        async move { new_project(app, "acme", &token, &format!("p{n}")).await }
    });
    let replies = futures::future::join_all(tries).await;
    let made = replies.iter().filter(|r| r.status == 201).count();
    for reply in replies.iter().filter(|r| r.status != 201) {
        assert_quota(reply, "max_projects");
    }
    assert_eq!(made, 2);
    let tenant = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    assert_eq!(
        app.database(&tenant)
            .numbers("SELECT count(*) FROM projects")
            .await,
        [2]
    );
}

#[tokio::test]
async fn a_full_database_refuses_adds_and_still_serves_reads() {
    let app = spawn_app_with(with_quota_plans).await;
    let acme = tenant_on(&app, "acme", "tiny").await;
    assert_quota(
        &new_project(&app, "acme", &acme.access_token, "one").await,
        "max_database_bytes",
    );
    assert_quota(
        &signup(&app, "acme", "new@acme.test").await,
        "max_database_bytes",
    );
    let listed = app
        .tenant("acme")
        .get("/v1/projects", &acme.access_token)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    // Another plan's tenant beside it is not full.
    let globex = tenant_on(&app, "globex", "quota").await;
    assert_eq!(
        new_project(&app, "globex", &globex.access_token, "fine")
            .await
            .status,
        201
    );
}

async fn stats(app: &TestApp, slug: &str) -> Value {
    let reply = app
        .admin(
            Method::GET,
            &format!("/admin/v1/tenants/{slug}/stats"),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn fleet(app: &TestApp, query: &str) -> Vec<String> {
    let reply = app
        .admin(Method::GET, &format!("/admin/v1/usage{query}"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["slug"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn requests_are_counted_per_tenant_and_the_fleet_sorts_by_any_measure() {
    let app = spawn_app_with(with_quota_plans).await;
    let acme = tenant_on(&app, "acme", "quota").await;
    let globex = tenant_on(&app, "globex", "quota").await;
    let before = stats(&app, "acme").await["requests"].as_i64().unwrap();
    let theirs_before = stats(&app, "globex").await["requests"].as_i64().unwrap();
    for _ in 0..7 {
        app.tenant("acme").get("/v1/me", &acme.access_token).await;
    }
    app.tenant("globex")
        .get("/v1/me", &globex.access_token)
        .await;
    assert_eq!(
        stats(&app, "acme").await["requests"].as_i64().unwrap(),
        before + 7
    );
    assert_eq!(
        stats(&app, "globex").await["requests"].as_i64().unwrap(),
        theirs_before + 1
    );
    // Added to the registry, the count is the same; nothing is counted twice.
    app.state.usage.flush(&app.state.registry).await;
    assert_eq!(
        stats(&app, "acme").await["requests"].as_i64().unwrap(),
        before + 7
    );
    assert_eq!(fleet(&app, "").await, ["acme", "globex"]);

    // Globex gets a project; stats measures it; sorted by projects it comes first.
    new_project(&app, "globex", &globex.access_token, "one").await;
    stats(&app, "globex").await;
    stats(&app, "acme").await;
    assert_eq!(fleet(&app, "?sort=projects").await, ["globex", "acme"]);
    assert_eq!(fleet(&app, "?sort=requests&limit=1").await, ["acme"]);
    let rows = app
        .admin(Method::GET, "/admin/v1/usage?sort=projects", None)
        .await;
    assert_eq!(rows.body[0]["projects"], 1);
    assert!(rows.body[0]["database_bytes"].as_i64().unwrap() > 0);
    assert!(rows.body[0]["measured_at"].is_string());

    for bad in ["?sort=nosuch", "?limit=0", "?limit=1001", "?limit=x"] {
        app.admin(Method::GET, &format!("/admin/v1/usage{bad}"), None)
            .await
            .assert_error(422, "validation_failed");
    }
}

#[test]
fn the_cli_lists_usage_and_measures_first_when_asked() {
    let cli = crate::helpers::Cli::new();
    cli.run(&["tenant", "create", "acme"]).assert_code(0);
    cli.run(&["tenant", "create", "globex"]).assert_code(0);
    let listed = cli.run(&["tenant", "usage", "--measure", "--sort", "database_bytes"]);
    listed.assert_code(0);
    assert!(
        listed.stderr.contains("measured 2 of 2 tenants"),
        "{}",
        listed.stderr
    );
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", listed.stdout);
    assert!(!lines[1].contains(" - "), "measured: {}", listed.stdout);
    cli.run(&["tenant", "usage", "--sort", "nosuch"])
        .assert_code(2);
    cli.run(&["tenant", "usage", "--limit", "0"]).assert_code(2);
}
