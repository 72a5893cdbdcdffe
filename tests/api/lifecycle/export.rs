//! `GET /admin/v1/tenants/{slug}/export` and `silo tenant export`: a tenant's own rows as JSON
//! lines, never another tenant's, never a credential.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{team, TestApp};

/// The export's status, content type and parsed lines.
async fn export(app: &TestApp, slug: &str) -> (u16, String, Vec<Value>) {
    let response = app
        .client
        .get(format!(
            "http://{}/admin/v1/tenants/{slug}/export",
            app.admin_addr
        ))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let lines = if status == 200 {
        assert!(text.ends_with('\n'), "{text}");
        text.lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect()
    } else {
        vec![serde_json::from_str(&text).expect("an error body")]
    };
    (status, content_type, lines)
}

/// The ids of `table`'s rows in an export.
fn ids(lines: &[Value], table: &str) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|line| line["table"] == table)
        .map(|line| line["row"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_export_holds_the_tenants_own_rows_and_no_credentials() {
    let app = crate::helpers::spawn_app().await;
    let mut made = Vec::new();
    for slug in ["acme", "globex"] {
        let team = team(&app, slug).await;
        let client = app.tenant(slug);
        let project = client
            .create_project(&team.owner.access_token, &format!("{slug} plans"))
            .await;
        let token = client
            .create_api_token(&team.owner.access_token, json!(["projects:read"]))
            .await;
        // One invitation left open, so the table has a token hash to keep back.
        let invited = client
            .post(
                "/v1/invitations",
                Some(&team.owner.access_token),
                json!({ "email": format!("later@{slug}.test"), "role": "member" }),
            )
            .await;
        assert_eq!(invited.status, 201, "{}", invited.body);
        made.push((slug, team, project, token));
    }

    let (status, content_type, lines) = export(&app, "acme").await;
    assert_eq!(status, 200, "{lines:?}");
    assert_eq!(content_type, "application/x-ndjson");
    let header = &lines[0];
    assert_eq!(header["format"], "silo.tenant-export");
    assert_eq!(header["version"], 1);
    assert_eq!(header["tenant"]["slug"], "acme");

    let (_, acme_team, acme_project, acme_token) = &made[0];
    let (_, globex_team, globex_project, globex_token) = &made[1];
    assert_eq!(
        ids(&lines, "projects"),
        BTreeSet::from([acme_project.clone()])
    );
    let users = ids(&lines, "users");
    assert_eq!(users.len(), 4, "the team of four: {users:?}");
    assert!(users.contains(&acme_team.owner.user_id));
    assert!(!users.contains(&globex_team.owner.user_id));
    assert_eq!(
        ids(&lines, "api_tokens"),
        BTreeSet::from([acme_token["id"].as_str().unwrap().to_owned()])
    );
    assert_eq!(
        ids(&lines, "invitations").len(),
        4,
        "three accepted, one open"
    );
    assert!(!ids(&lines, "audit_log").is_empty());

    // Nothing of globex, nothing secret: not the keys, and not the values either, read from
    // acme's database behind silo's back.
    let text = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for foreign in [
        globex_project.as_str(),
        globex_token["id"].as_str().unwrap(),
        "globex",
    ] {
        assert!(
            !text.contains(foreign),
            "{foreign} leaked into acme's export"
        );
    }
    for key in ["password_hash", "token_hash", "refresh_tokens"] {
        assert!(!text.contains(key), "{key} in the export");
    }
    let tenant = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    let database = app.database(&tenant);
    let mut secrets = database.texts("SELECT password_hash FROM users").await;
    secrets.extend(database.texts("SELECT token_hash FROM api_tokens").await);
    secrets.extend(database.texts("SELECT token_hash FROM invitations").await);
    secrets.extend(
        database
            .texts("SELECT token_hash FROM refresh_tokens")
            .await,
    );
    assert!(secrets.len() >= 10, "{secrets:?}");
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a hash leaked");
    }
    assert!(!text.contains(acme_token["token"].as_str().unwrap_or("no token")));

    // The export is in acme's audit log, not globex's.
    let audit = app
        .tenant("acme")
        .get("/v1/audit", &acme_team.owner.access_token)
        .await;
    assert!(
        audit.body.to_string().contains("tenant.exported"),
        "{}",
        audit.body
    );
    let theirs = app
        .tenant("globex")
        .get("/v1/audit", &globex_team.owner.access_token)
        .await;
    assert!(!theirs.body.to_string().contains("tenant.exported"));
}

#[tokio::test]
async fn a_suspended_tenant_can_be_exported_and_bad_targets_are_refused() {
    let app = crate::helpers::spawn_app().await;
    let owner = app
        .create_tenant_with_owner("acme", "owner@acme.test", "owner-password")
        .await;
    let project = app
        .tenant("acme")
        .create_project(&owner.access_token, "kept")
        .await;
    app.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    let (status, _, lines) = export(&app, "acme").await;
    assert_eq!(status, 200, "{lines:?}");
    assert_eq!(ids(&lines, "projects"), BTreeSet::from([project]));

    let (status, _, body) = export(&app, "nosuch").await;
    assert_eq!(status, 404, "{body:?}");
    assert_eq!(body[0]["error"]["code"], "not_found");
    let (status, _, body) = export(&app, "Not A Slug").await;
    assert!(status == 404 || status == 400, "{status} {body:?}");

    // A tenant still provisioning has nothing whole to export.
    app.force_status("acme", silo::tenant::Status::Provisioning)
        .await;
    let (status, _, body) = export(&app, "acme").await;
    assert_eq!(status, 409, "{body:?}");
    assert_eq!(body[0]["error"]["code"], "conflict");
}

#[test]
fn the_cli_writes_the_same_export_to_a_file() {
    let cli = crate::helpers::Cli::new();
    cli.run(&["tenant", "create", "acme"]).assert_code(0);
    let out = cli.dir.path().join("acme.jsonl");
    let written = cli.run(&["tenant", "export", "acme", "--out", out.to_str().unwrap()]);
    written.assert_code(0);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["tenant"]["slug"], "acme");
    assert!(
        lines.iter().any(|l| l["table"] == "settings"),
        "the plan's seed rows: {text}"
    );
    let to_stdout = cli.run(&["tenant", "export", "acme"]);
    to_stdout.assert_code(0);
    assert_eq!(
        to_stdout.stdout.lines().count(),
        lines.len() + 1,
        "one more audit row"
    );
    cli.run(&["tenant", "export", "nosuch"]).assert_code(1);
    cli.run(&["tenant", "export", "NOT-A-SLUG!"]).assert_code(2);
    assert!(!cli.dir.path().join("acme.jsonl.partial").exists());
}
