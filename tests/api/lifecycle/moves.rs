//! `POST /admin/v1/tenants/{slug}/move` and `silo tenant move`: a tenant's database goes to
//! another server while it is served. Reads never fail, a write either lands (and is there
//! afterwards) or is told to retry, the old copy is gone, and no other tenant moves.

use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use reqwest::Method;
use serde_json::{json, Value};
use silo::{config::ServerSettings, Settings};
use sqlx::{Connection, PgConnection};

use crate::helpers::{spawn_app_with, Cluster, Session, TestApp};

/// Adds `files`, a SQLite server in `dir`, and `second`, the cluster, when there is one.
fn with_servers(settings: &mut Settings, dir: &std::path::Path, cluster: Option<&Cluster>) {
    settings.servers.insert(
        "files".into(),
        ServerSettings {
            url: format!("sqlite://{}", dir.display()),
            max_connections: 60,
        },
    );
    if let Some(cluster) = cluster {
        settings.servers.insert(
            "second".into(),
            ServerSettings {
                url: cluster.admin_url(),
                max_connections: 60,
            },
        );
    }
}

async fn move_to(app: &TestApp, slug: &str, to: &str) -> crate::helpers::Reply {
    app.admin(
        Method::POST,
        &format!("/admin/v1/tenants/{slug}/move"),
        Some(json!({ "to": to })),
    )
    .await
}

async fn on_cluster(cluster: &Cluster, database: &str) -> bool {
    let mut admin = PgConnection::connect(&cluster.admin_url()).await.unwrap();
    let found: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    let _ = admin.close().await;
    found
}

/// Tenant `slug` on server `local` (not where placement would put it), and its owner's session.
async fn on_local(app: &TestApp, slug: &str) -> Session {
    app.create_tenant_with_owner_and(
        slug,
        &format!("owner@{slug}.test"),
        "owner-password",
        json!({ "server": "local" }),
    )
    .await
}

async fn project_names(app: &TestApp, slug: &str, token: &str) -> BTreeSet<String> {
    let reply = app.tenant(slug).get("/v1/projects?limit=100", token).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut names: BTreeSet<String> = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = reply.body["next_cursor"].as_str().map(str::to_owned);
    while let Some(after) = cursor {
        let page = app
            .tenant(slug)
            .get(&format!("/v1/projects?limit=100&cursor={after}"), token)
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        names.extend(
            page.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned()),
        );
        cursor = page.body["next_cursor"].as_str().map(str::to_owned);
    }
    names
}

#[tokio::test]
async fn a_tenant_moves_across_servers_while_served_and_loses_no_write() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| with_servers(s, files.path(), Some(&cluster))).await;
    let acme = on_local(&app, "acme").await;
    let globex = on_local(&app, "globex").await;
    let token = acme.access_token.clone();
    app.tenant("acme").create_project(&token, "before").await;
    app.tenant("globex")
        .create_project(&globex.access_token, "theirs")
        .await;
    let before = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;

    // Requests all through the moves: reads must always answer; a write lands or is told to
    // retry (503 with Retry-After), nothing else.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, client, addr, token) =
            (stop.clone(), app.client.clone(), app.addr, token.clone());
        tokio::spawn(async move {
            let mut landed = BTreeSet::new();
            let (mut reads, mut retried) = (0, 0);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let read = client
                    .get(format!("http://{addr}/v1/projects?limit=1"))
                    .header("host", "acme.localhost")
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    read.status(),
                    200,
                    "a read during a move: {}",
                    read.text().await.unwrap()
                );
                reads += 1;
                let name = format!("during {n}");
                let write = client
                    .post(format!("http://{addr}/v1/projects"))
                    .header("host", "acme.localhost")
                    .bearer_auth(&token)
                    .json(&json!({ "name": name }))
                    .send()
                    .await
                    .unwrap();
                match write.status().as_u16() {
                    201 => {
                        landed.insert(name);
                    }
                    503 => {
                        assert!(write.headers().contains_key("retry-after"));
                        retried += 1;
                    }
                    other => panic!(
                        "a write during a move: {other} {}",
                        write.text().await.unwrap()
                    ),
                }
            }
            (landed, reads, retried)
        })
    };

    let mut path = Vec::new();
    assert_eq!(before["server"], "local");
    for to in ["second", "files", "local"] {
        let moved = move_to(&app, "acme", to).await;
        assert_eq!(moved.status, 200, "to {to}: {}", moved.body);
        assert_eq!(moved.body["server"], to);
        assert_eq!(moved.body["status"], "active");
        path.push(moved.body);
    }
    stop.store(true, Ordering::Relaxed);
    let (landed, reads, retried) = traffic.await.unwrap();
    eprintln!(
        "{reads} reads, {} writes landed, {retried} told to retry",
        landed.len()
    );
    assert!(reads > 3 && !landed.is_empty(), "{reads} reads, {landed:?}");

    // Every write that landed is there, wherever it landed.
    let names = project_names(&app, "acme", &token).await;
    for name in landed.iter().chain([&"before".to_owned()]) {
        assert!(names.contains(name), "{name} was lost in a move");
    }
    // The old copies are gone, the final one is acme's.
    assert!(!on_cluster(&cluster, path[0]["database"].as_str().unwrap()).await);
    assert!(!files
        .path()
        .join(path[1]["database"].as_str().unwrap())
        .exists());
    assert_eq!(path[2]["id"], before["id"]);
    assert!(app.database(&path[2]).exists().await);
    // Its users, their passwords and their tokens moved with it.
    app.tenant("acme")
        .login("owner@acme.test", "owner-password")
        .await;
    let me = app.tenant("acme").get("/v1/me", &token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let refreshed = app
        .tenant("acme")
        .post(
            "/v1/auth/refresh",
            None,
            json!({ "refresh_token": acme.refresh_token }),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);

    // Globex never moved, and never saw acme's data.
    let theirs = app
        .admin(Method::GET, "/admin/v1/tenants/globex", None)
        .await
        .body;
    assert_eq!(theirs["server"], "local");
    assert_eq!(
        project_names(&app, "globex", &globex.access_token).await,
        BTreeSet::from(["theirs".to_owned()])
    );

    let runs = app
        .admin(Method::GET, "/admin/v1/tenants/acme/runs", None)
        .await
        .body;
    let moves: Vec<(&str, &str)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["detail"]["to"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("local", "succeeded"),
            ("files", "succeeded"),
            ("second", "succeeded")
        ]
    );
    let audit = app.tenant("acme").get("/v1/audit", &token).await;
    assert!(audit.body.to_string().contains("tenant.moved"));
}

#[tokio::test]
async fn a_move_that_cannot_be_made_leaves_the_tenant_where_it_was() {
    let files = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| with_servers(s, files.path(), None)).await;
    let owner = on_local(&app, "acme").await;
    app.tenant("acme")
        .create_project(&owner.access_token, "kept")
        .await;
    let before = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;

    move_to(&app, "nosuch", "files")
        .await
        .assert_error(404, "not_found");
    move_to(&app, "acme", "nowhere")
        .await
        .assert_error(422, "validation_failed");
    move_to(&app, "acme", "local")
        .await
        .assert_error(409, "conflict");
    app.admin(
        Method::POST,
        "/admin/v1/tenants/acme/move",
        Some(json!({ "server": "files" })),
    )
    .await
    .assert_error(422, "validation_failed");

    // A database of that name already on the target (a failed move's, or another
    // deployment's): refused, and left alone.
    let in_the_way = files
        .path()
        .join(format!("{}.db", before["id"].as_str().unwrap()));
    std::fs::write(&in_the_way, b"not ours").unwrap();
    move_to(&app, "acme", "files")
        .await
        .assert_error(409, "conflict");
    assert_eq!(std::fs::read(&in_the_way).unwrap(), b"not ours");
    std::fs::remove_file(&in_the_way).unwrap();

    // A target that cannot take it (its directory became a file): a failure, recorded; the
    // tenant served from where it was.
    std::fs::remove_dir_all(files.path()).unwrap();
    std::fs::write(files.path(), b"").unwrap();
    let failed = move_to(&app, "acme", "files").await;
    failed.assert_error(500, "internal");
    std::fs::remove_file(files.path()).unwrap();
    std::fs::create_dir(files.path()).unwrap();
    let after = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    assert_eq!(after["server"], "local");
    assert_eq!(after["database"], before["database"]);
    assert_eq!(
        project_names(&app, "acme", &owner.access_token).await,
        BTreeSet::from(["kept".to_owned()])
    );
    let runs = app
        .admin(Method::GET, "/admin/v1/tenants/acme/runs", None)
        .await
        .body;
    assert_eq!(runs[0]["kind"], "move");
    assert_eq!(runs[0]["status"], "failed");

    // Only an active or suspended tenant moves.
    app.force_status("acme", silo::tenant::Status::Provisioning)
        .await;
    move_to(&app, "acme", "files")
        .await
        .assert_error(409, "conflict");
    app.force_status("acme", silo::tenant::Status::Suspended)
        .await;
    let moved = move_to(&app, "acme", "files").await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["status"], "suspended");
    assert!(files
        .path()
        .join(moved.body["database"].as_str().unwrap())
        .exists());
    assert!(!app.database(&before).exists().await, "the old copy stayed");
}

#[test]
fn the_cli_moves_a_tenant() {
    let cli = crate::helpers::Cli::new();
    let files = cli.dir.path().join("files");
    let mut env = cli.env();
    env.push((
        "SILO__SERVERS__FILES__URL",
        format!("sqlite://{}", files.display()),
    ));
    cli.run_with(
        &["tenant", "create", "acme", "--server", "local"],
        &env,
        None,
    )
    .assert_code(0);
    let moved = cli.run_with(&["tenant", "move", "acme", "--to", "files"], &env, None);
    moved.assert_code(0);
    let record: Value = moved.json();
    assert_eq!(record["server"], "files");
    assert!(files.join(record["database"].as_str().unwrap()).exists());
    cli.run_with(&["tenant", "move", "acme", "--to", "files"], &env, None)
        .assert_code(1);
    cli.run_with(&["tenant", "move", "nosuch", "--to", "local"], &env, None)
        .assert_code(1);
    cli.run_with(&["tenant", "move", "acme", "--to", "nowhere"], &env, None)
        .assert_code(2);
    cli.run_with(
        &["tenant", "move", "NOT-A-SLUG!", "--to", "local"],
        &env,
        None,
    )
    .assert_code(2);
    cli.run_with(&["tenant", "move", "acme", "--to", "local"], &env, None)
        .assert_code(0);
}
