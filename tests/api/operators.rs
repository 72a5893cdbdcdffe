//! The operator side of team features: support sessions, stats, migrations, and the audit log
//! that records what operators and users did.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, team};

#[tokio::test]
async fn a_support_session_acts_as_the_user_and_is_in_the_tenants_audit_log() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let body = json!({"email": "member@acme.test", "reason": "ticket 4711: cannot see project", "ttl_secs": 600});
    let reply = app
        .admin(
            Method::POST,
            "/admin/v1/tenants/acme/support-sessions",
            Some(body),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["user"]["email"], "member@acme.test");
    assert!(reply.body["expires_at"].as_str().unwrap().ends_with('Z'));
    let token = reply.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.tenant("acme").get("/v1/me", token).await.body["email"],
        "member@acme.test"
    );
    app.tenant("globex-x")
        .get("/v1/me", token)
        .await
        .assert_error(404, "tenant_not_found");

    let audit = app
        .tenant("acme")
        .get("/v1/audit", &team.admin.access_token)
        .await;
    let entry = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "support_session.created")
        .cloned();
    let entry = entry.expect("support session in the audit log");
    assert_eq!(
        entry["details"]["reason"],
        "ticket 4711: cannot see project"
    );
    assert!(entry["details"]["token_id"].is_string() && entry["details"]["expires_at"].is_string());
    assert_eq!(entry["actor_kind"], "operator");
}

#[tokio::test]
async fn support_sessions_validate_their_input() {
    let app = spawn_app().await;
    team(&app, "acme").await;
    let path = "/admin/v1/tenants/acme/support-sessions";
    let too_long = json!({"email": "member@acme.test", "reason": "r", "ttl_secs": 3601});
    app.admin(Method::POST, path, Some(too_long))
        .await
        .assert_error(422, "validation_failed");
    let no_reason = json!({"email": "member@acme.test", "reason": "  "});
    app.admin(Method::POST, path, Some(no_reason))
        .await
        .assert_error(422, "validation_failed");
    let nobody = json!({"email": "nobody@acme.test", "reason": "r"});
    app.admin(Method::POST, path, Some(nobody))
        .await
        .assert_error(404, "not_found");
    let unknown_tenant = json!({"email": "member@acme.test", "reason": "r"});
    app.admin(
        Method::POST,
        "/admin/v1/tenants/nope/support-sessions",
        Some(unknown_tenant),
    )
    .await
    .assert_error(404, "not_found");
}

#[tokio::test]
async fn stats_count_the_tenants_own_rows() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    team_projects(&app, &team.owner.access_token, 3).await;
    let stats = app
        .admin(Method::GET, "/admin/v1/tenants/acme/stats", None)
        .await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert_eq!(stats.body["users"], 4);
    assert_eq!(stats.body["projects"], 3);
    assert!(stats.body["database_bytes"].as_u64().unwrap() > 0);
    assert!(stats.body["open_connections"].as_u64().unwrap() >= 1);
}

async fn team_projects(app: &crate::helpers::TestApp, token: &str, n: usize) {
    for i in 0..n {
        app.tenant("acme")
            .create_project(token, &format!("p{i}"))
            .await;
    }
}

#[tokio::test]
async fn the_audit_log_records_what_happened_newest_first_without_secrets() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let client = app.tenant("acme");
    client
        .try_login("member@acme.test", "wrong-password")
        .await
        .assert_error(401, "invalid_credentials");
    client.login("member@acme.test", "invitee-password").await;
    let api = client
        .create_api_token(&team.member.access_token, json!(["projects:read"]))
        .await;
    let api_id = api["id"].as_str().unwrap().to_owned();
    let secret = api["token"].as_str().unwrap().to_owned();
    assert_eq!(
        client
            .delete(
                &format!("/v1/api-tokens/{api_id}"),
                &team.member.access_token
            )
            .await
            .status,
        204
    );
    let viewer_id = client.get("/v1/me", &team.viewer.access_token).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    client
        .patch(
            &format!("/v1/members/{viewer_id}"),
            &team.admin.access_token,
            json!({"role": "member"}),
        )
        .await;
    client
        .delete(
            &format!("/v1/members/{viewer_id}"),
            &team.admin.access_token,
        )
        .await;
    app.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    app.admin(Method::POST, "/admin/v1/tenants/acme/resume", None)
        .await;

    let audit = client
        .get("/v1/audit?limit=100", &team.admin.access_token)
        .await;
    assert_eq!(audit.status, 200);
    let actions: Vec<&str> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "invitation.created",
        "invitation.accepted",
        "auth.login_failed",
        "auth.login_succeeded",
        "api_token.created",
        "api_token.revoked",
        "member.role_changed",
        "member.removed",
        "tenant.suspended",
        "tenant.resumed",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert_eq!(actions[0], "tenant.resumed", "newest first");
    let text = audit.body.to_string();
    assert!(
        !text.contains(&secret)
            && !text.contains("invitee-password")
            && !text.contains("wrong-password")
    );
}

#[tokio::test]
async fn the_audit_log_is_for_admins_and_stays_in_its_tenant() {
    let app = spawn_app().await;
    let acme = team(&app, "acme").await;
    let globex = team(&app, "globex").await;
    app.tenant("acme")
        .get("/v1/audit", &acme.member.access_token)
        .await
        .assert_error(403, "forbidden");
    let globex_audit = app
        .tenant("globex")
        .get("/v1/audit?limit=100", &globex.owner.access_token)
        .await;
    assert!(
        !globex_audit.body.to_string().contains("acme.test"),
        "globex's log holds nothing of acme"
    );
}

#[tokio::test]
async fn a_migration_run_is_accepted_recorded_and_reported() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let started = app
        .admin(
            Method::POST,
            "/admin/v1/migrations",
            Some(json!({"concurrency": 2})),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let id = started.body["id"].as_str().unwrap().to_owned();
    let mut run = serde_json::Value::Null;
    for _ in 0..100 {
        run = app
            .admin(Method::GET, &format!("/admin/v1/migrations/{id}"), None)
            .await
            .body;
        if run["status"] == "finished" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(run["status"], "finished", "{run}");
    assert_eq!(run["failed"], 0);
    let status = app
        .admin(Method::GET, "/admin/v1/migrations/status", None)
        .await;
    assert_eq!(status.status, 200);
    let target = status.body["target_version"].as_i64().unwrap();
    assert_eq!(
        status.body["tenants_by_version"][target.to_string()],
        2,
        "{}",
        status.body
    );
    assert_eq!(status.body["failed"], json!([]));
    let bad = app
        .admin(
            Method::POST,
            "/admin/v1/migrations",
            Some(json!({"tenants": ["nope"]})),
        )
        .await;
    bad.assert_error(422, "validation_failed");
    let zero = app
        .admin(
            Method::POST,
            "/admin/v1/migrations",
            Some(json!({"concurrency": 0})),
        )
        .await;
    zero.assert_error(422, "validation_failed");
    // Both fields are optional, so the body may be left out altogether; a body that is there
    // is still read as JSON.
    let bodiless = app.admin(Method::POST, "/admin/v1/migrations", None).await;
    assert_eq!(bodiless.status, 202, "{}", bodiless.body);
    let not_json = crate::helpers::Reply::send(
        app.client
            .post(format!("http://{}/admin/v1/migrations", app.admin_addr))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    not_json.assert_error(400, "bad_request");
}

#[tokio::test]
async fn every_admin_route_refuses_a_missing_or_wrong_token() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    for (method, path) in [
        (Method::GET, "/admin/v1/tenants/acme/stats"),
        (Method::POST, "/admin/v1/tenants/acme/support-sessions"),
        (Method::POST, "/admin/v1/migrations"),
        (Method::GET, "/admin/v1/migrations/status"),
    ] {
        for token in [None, Some("wrong-token")] {
            let reply = app
                .admin_with_token(method.clone(), path, Some(json!({})), token)
                .await;
            reply.assert_error(401, "unauthorized");
        }
    }
}

#[tokio::test]
async fn stats_of_a_tenant_whose_database_is_gone_are_unavailable_not_an_error() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("acme").await;
    app.database(&tenant).remove().await;
    let stats = app
        .admin(Method::GET, "/admin/v1/tenants/acme/stats", None)
        .await;
    stats.assert_error(503, "tenant_unavailable");
}
