//! Backups, restores and clones: `POST /admin/v1/tenants/{slug}/backup | restore`,
//! `POST /admin/v1/tenants` with `from`, and the CLI's `tenant backup | restore | create --from`.
//! A copy is of one tenant only, a restore replaces one tenant's data only, and a copy that
//! becomes another tenant opens with none of the first one's tokens.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{team, Reply, TestApp, ADMIN_TOKEN};

/// The backup file of `slug`, or the error reply.
async fn backup(app: &TestApp, slug: &str) -> Result<String, Reply> {
    let response = app
        .client
        .post(format!(
            "http://{}/admin/v1/tenants/{slug}/backup",
            app.admin_addr
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    if response.status() != 200 {
        return Err(Reply::from(response).await);
    }
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    Ok(response.text().await.unwrap())
}

async fn restore(app: &TestApp, slug: &str, file: &str) -> Reply {
    Reply::send(
        app.client
            .post(format!(
                "http://{}/admin/v1/tenants/{slug}/restore",
                app.admin_addr
            ))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/x-ndjson")
            .body(file.to_owned()),
    )
    .await
}

/// The names of the projects `token` sees in tenant `slug`.
async fn projects(app: &TestApp, slug: &str, token: &str) -> BTreeSet<String> {
    let reply = app.tenant(slug).get("/v1/projects", token).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn status(app: &TestApp, slug: &str) -> Value {
    app.admin(Method::GET, &format!("/admin/v1/tenants/{slug}"), None)
        .await
        .body["status"]
        .clone()
}

#[tokio::test]
async fn a_backup_restores_into_its_own_suspended_tenant_and_touches_no_other() {
    let app = crate::helpers::spawn_app().await;
    let acme = team(&app, "acme").await;
    let globex = team(&app, "globex").await;
    let token = &acme.owner.access_token;
    let first = app.tenant("acme").create_project(token, "first").await;
    app.tenant("globex")
        .create_project(&globex.owner.access_token, "theirs")
        .await;

    let file = backup(&app, "acme").await.expect("a backup");
    let header: Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
    assert_eq!(header["format"], "silo.tenant-backup");
    assert_eq!(header["tenant"]["slug"], "acme");
    assert!(file.contains(&first));
    assert!(
        !file.contains("theirs") && !file.contains("globex"),
        "globex in acme's backup"
    );
    assert!(
        file.contains("password_hash"),
        "a backup is the whole database"
    );

    // Acme changes after the backup.
    app.tenant("acme").create_project(token, "second").await;
    let removed = app
        .tenant("acme")
        .delete(&format!("/v1/projects/{first}"), token)
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);

    // Refused while acme is served, and into another tenant: nothing changes.
    restore(&app, "acme", &file)
        .await
        .assert_error(409, "conflict");
    app.admin(Method::POST, "/admin/v1/tenants/globex/suspend", None)
        .await;
    let foreign = restore(&app, "globex", &file).await;
    foreign.assert_error(409, "conflict");
    assert!(foreign.body.to_string().contains("under a slug nobody has"));
    app.admin(Method::POST, "/admin/v1/tenants/globex/resume", None)
        .await;
    assert_eq!(projects(&app, "acme", token).await, names(&["second"]));

    // Files that are not whole backups: refused before anything is touched.
    app.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    let lines: Vec<&str> = file.lines().collect();
    let cut_short = lines[..lines.len() - 1].join("\n") + "\n";
    let edited = file.replace("\"first\"", "\"forged\"");
    for bad in [
        cut_short.as_str(),
        edited.as_str(),
        "",
        "not json\n",
        &file[..file.len() / 2],
    ] {
        restore(&app, "acme", bad)
            .await
            .assert_error(400, "bad_request");
    }
    app.admin(Method::POST, "/admin/v1/tenants/acme/resume", None)
        .await;
    assert_eq!(projects(&app, "acme", token).await, names(&["second"]));

    // Suspended, it restores: acme is as it was at the backup, and stays suspended.
    app.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    let restored = restore(&app, "acme", &file).await;
    assert_eq!(restored.status, 200, "{}", restored.body);
    assert_eq!(restored.body["status"], "suspended");
    app.admin(Method::POST, "/admin/v1/tenants/acme/resume", None)
        .await;
    assert_eq!(projects(&app, "acme", token).await, names(&["first"]));
    app.tenant("acme")
        .login("member@acme.test", "invitee-password")
        .await;
    // Globex never moved.
    assert_eq!(
        projects(&app, "globex", &globex.owner.access_token).await,
        names(&["theirs"])
    );
    assert_eq!(status(&app, "globex").await, "active");

    // Every run that started is in the registry, newest first; the refusals never started.
    let runs = app
        .admin(Method::GET, "/admin/v1/tenants/acme/runs", None)
        .await;
    assert_eq!(runs.status, 200, "{}", runs.body);
    let kinds: Vec<(String, String)> = runs
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("restore".to_owned(), "succeeded".to_owned()),
            ("backup".to_owned(), "succeeded".to_owned())
        ]
    );
    let globex_runs = app
        .admin(Method::GET, "/admin/v1/tenants/globex/runs", None)
        .await;
    assert_eq!(globex_runs.body, json!([]));
    let audit = app.tenant("acme").get("/v1/audit", token).await;
    assert!(
        audit.body.to_string().contains("tenant.restored"),
        "{}",
        audit.body
    );

    // Unknown tenants.
    backup(&app, "nosuch")
        .await
        .unwrap_err()
        .assert_error(404, "not_found");
    app.admin(Method::GET, "/admin/v1/tenants/nosuch/runs", None)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn a_backup_restored_under_a_new_slug_is_a_new_tenant_that_no_old_token_opens() {
    let app = crate::helpers::spawn_app().await;
    let acme = team(&app, "acme").await;
    let token = &acme.owner.access_token;
    app.tenant("acme").create_project(token, "plans").await;
    let api_token = app
        .tenant("acme")
        .create_api_token(token, json!(["projects:read"]))
        .await;
    let file = backup(&app, "acme").await.expect("a backup");

    let made = restore(&app, "acme-copy", &file).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let original = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    assert_ne!(made.body["id"], original["id"]);
    assert_ne!(made.body["database"], original["database"]);
    assert_eq!(made.body["status"], "active");

    // Its users are acme's, with their passwords; its data is acme's.
    let copy = app
        .tenant("acme-copy")
        .login("owner@acme.test", "owner-password")
        .await;
    assert_eq!(
        projects(&app, "acme-copy", &copy.access_token).await,
        names(&["plans"])
    );
    // None of acme's tokens opens the copy: its own signing key, and no sessions, API tokens
    // or invitations came along.
    let client = app.tenant("acme-copy");
    client
        .get("/v1/projects", token)
        .await
        .assert_error(401, "unauthorized");
    client
        .get("/v1/projects", api_token["token"].as_str().unwrap())
        .await
        .assert_error(401, "unauthorized");
    client
        .post(
            "/v1/auth/refresh",
            None,
            json!({ "refresh_token": acme.owner.refresh_token }),
        )
        .await
        .assert_error(401, "unauthorized");
    let database = app.database(&made.body);
    for table in ["refresh_tokens", "api_tokens", "invitations"] {
        let rows = database
            .numbers(&format!("SELECT count(*) FROM {table}"))
            .await;
        // The copy's owner just logged in: that one session is its own.
        let allowed = if table == "refresh_tokens" { 1 } else { 0 };
        assert_eq!(rows, [allowed], "{table} in the copy");
    }

    // They part ways from here.
    client.create_project(&copy.access_token, "copy only").await;
    assert_eq!(projects(&app, "acme", token).await, names(&["plans"]));

    // A slug that cannot be one, a slug taken since: refused, nothing made.
    restore(&app, "Not A Slug", &file)
        .await
        .assert_error(422, "validation_failed");
    let tenants = app.admin(Method::GET, "/admin/v1/tenants", None).await;
    assert_eq!(tenants.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_clone_starts_as_a_copy_with_its_own_id_role_and_keys() {
    let app = crate::helpers::spawn_app().await;
    let acme = team(&app, "acme").await;
    let token = &acme.owner.access_token;
    app.tenant("acme").create_project(token, "plans").await;
    let plan = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body["plan"]
        .clone();

    let made = super::create(&app, json!({ "slug": "acme-staging", "from": "acme" })).await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["plan"], plan);
    let source = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    assert_ne!(made.body["id"], source["id"]);

    let staging = app
        .tenant("acme-staging")
        .login("member@acme.test", "invitee-password")
        .await;
    assert_eq!(
        projects(&app, "acme-staging", &staging.access_token).await,
        names(&["plans"])
    );
    app.tenant("acme-staging")
        .get("/v1/projects", token)
        .await
        .assert_error(401, "unauthorized");
    app.tenant("acme")
        .get("/v1/projects", &staging.access_token)
        .await
        .assert_error(401, "unauthorized");
    app.tenant("acme-staging")
        .create_project(&staging.access_token, "staging only")
        .await;
    assert_eq!(projects(&app, "acme", token).await, names(&["plans"]));

    let runs = app
        .admin(Method::GET, "/admin/v1/tenants/acme-staging/runs", None)
        .await;
    assert_eq!(runs.body[0]["kind"], "clone", "{}", runs.body);
    assert_eq!(runs.body[0]["detail"]["from"], "acme");
    let runs_of_staging = || async {
        app.admin(Method::GET, "/admin/v1/tenants/acme-staging/runs", None)
            .await
            .body
            .as_array()
            .unwrap()
            .len()
    };

    // Refusals, each leaving no tenant behind.
    let refused = [
        (
            json!({ "slug": "copy-one", "from": "nosuch" }),
            422,
            "validation_failed",
        ),
        (
            json!({ "slug": "copy-two", "from": "acme", "owner_email": "o@x.test", "owner_password": "long-enough" }),
            422,
            "validation_failed",
        ),
        (
            json!({ "slug": "acme-staging", "from": "acme" }),
            409,
            "conflict",
        ),
        (
            json!({ "slug": "copy-three", "from": "Not A Slug" }),
            422,
            "validation_failed",
        ),
    ];
    for (body, code, error) in refused {
        super::create(&app, body.clone())
            .await
            .assert_error(code, error);
    }
    app.force_status("acme", silo::tenant::Status::Provisioning)
        .await;
    super::create(&app, json!({ "slug": "copy-four", "from": "acme" }))
        .await
        .assert_error(409, "conflict");
    let slugs = super::slugs(&app, "").await;
    assert_eq!(slugs, ["acme", "acme-staging"]);
    // The clone into a taken slug was refused before it started: no run of acme-staging's.
    assert_eq!(runs_of_staging().await, 1);
}

#[test]
fn the_cli_backs_up_restores_and_clones() {
    let cli = crate::helpers::Cli::new();
    cli.run(&["tenant", "create", "acme"]).assert_code(0);
    let file = cli.dir.path().join("acme.backup");
    let path = file.to_str().unwrap();
    cli.run(&["tenant", "backup", "acme", "--out", path])
        .assert_code(0);
    assert!(!cli.dir.path().join("acme.backup.partial").exists());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("{\"format\":\"silo.tenant-backup\""),
        "{text}"
    );

    // Refused: served, unknown, a bad file, a file that is not there.
    cli.run(&["tenant", "restore", "acme", "--from", path])
        .assert_code(1);
    cli.run(&["tenant", "backup", "nosuch"]).assert_code(1);
    cli.run(&["tenant", "backup", "NOT-A-SLUG!"]).assert_code(2);
    cli.run(&["tenant", "suspend", "acme"]).assert_code(0);
    let broken = cli.dir.path().join("broken.backup");
    std::fs::write(&broken, &text[..text.len() - 10]).unwrap();
    cli.run(&[
        "tenant",
        "restore",
        "acme",
        "--from",
        broken.to_str().unwrap(),
    ])
    .assert_code(2);
    cli.run(&["tenant", "restore", "acme", "--from", "/nonexistent/backup"])
        .assert_code(2);

    let restored = cli.run(&["tenant", "restore", "acme", "--from", path]);
    restored.assert_code(0);
    assert_eq!(restored.json()["status"], "suspended");
    let copy = cli.run(&["tenant", "restore", "acme-two", "--from", path]);
    copy.assert_code(0);
    assert_eq!(copy.json()["status"], "active");
    let clone = cli.run(&["tenant", "create", "acme-three", "--from", "acme"]);
    clone.assert_code(0);
    assert_ne!(clone.json()["id"], restored.json()["id"]);
    cli.run(&["tenant", "create", "acme-four", "--from", "nosuch"])
        .assert_code(2);

    let runs = cli.run(&["tenant", "runs", "acme"]);
    runs.assert_code(0);
    assert!(
        runs.stdout.contains("restore") && runs.stdout.contains("backup"),
        "{}",
        runs.stdout
    );
    cli.run(&["tenant", "runs", "nosuch"]).assert_code(1);
}

#[tokio::test]
async fn a_backup_that_does_not_fit_the_schema_is_refused_whole() {
    let app = crate::helpers::spawn_app().await;
    let owner = app
        .create_tenant_with_owner("acme", "owner@acme.test", "owner-password")
        .await;
    app.tenant("acme")
        .create_project(&owner.access_token, "kept")
        .await;
    let file = backup(&app, "acme").await.expect("a backup");
    let mut parsed = silo::control::Backup::parse(&file).unwrap();
    // Whole and checksummed, but with a column no tenant schema has, after tables that fit.
    let last = parsed.tables.len() - 1;
    parsed.tables[last].columns[0].name = "no_such_column".into();
    app.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    let refused = restore(&app, "acme", &parsed.to_file()).await;
    refused.assert_error(400, "bad_request");
    assert!(
        refused.body.to_string().contains("no_such_column"),
        "{}",
        refused.body
    );
    app.admin(Method::POST, "/admin/v1/tenants/acme/resume", None)
        .await;
    assert_eq!(
        projects(&app, "acme", &owner.access_token).await,
        names(&["kept"])
    );
    let runs = app
        .admin(Method::GET, "/admin/v1/tenants/acme/runs", None)
        .await;
    assert_eq!(runs.body[0]["status"], "failed", "{}", runs.body);
    assert!(runs.body[0]["error"]
        .as_str()
        .unwrap()
        .contains("no_such_column"));

    // A column of another kind is refused too.
    let mut retyped = silo::control::Backup::parse(&file).unwrap();
    let users = retyped
        .tables
        .iter_mut()
        .find(|t| t.name == "users")
        .unwrap();
    let created = users
        .columns
        .iter()
        .position(|c| c.name == "created_at")
        .unwrap();
    users.columns[created].kind = silo::control::ColumnKind::Text;
    for row in &mut users.rows {
        row[created] = json!("not a number");
    }
    app.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    let refused = restore(&app, "acme", &retyped.to_file()).await;
    refused.assert_error(400, "bad_request");
    assert!(
        refused.body.to_string().contains("created_at"),
        "{}",
        refused.body
    );

    // Under a new slug, what does not fit leaves no tenant behind, and the slug free.
    restore(&app, "acme-bad", &parsed.to_file())
        .await
        .assert_error(400, "bad_request");
    app.admin(Method::GET, "/admin/v1/tenants/acme-bad", None)
        .await
        .assert_error(404, "not_found");
    let good = restore(&app, "acme-bad", &file).await;
    assert_eq!(good.status, 201, "{}", good.body);
}
