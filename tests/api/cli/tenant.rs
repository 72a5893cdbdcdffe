//! `silo tenant ...`: create, list, show, suspend, resume, delete, and finishing a failed create.

use std::time::Duration;

use super::{databases, serve};
use crate::helpers::{list_dir, Cli};

/// Whether tenant databases are files in the CLI's own directory, which can be counted; on a
/// PostgreSQL server other tests' databases sit beside them, so tests look for theirs by name.
fn on_files() -> bool {
    crate::helpers::tenant_server_url().is_none()
}

#[tokio::test]
async fn tenant_create_prints_the_active_tenant_as_json() {
    let cli = Cli::new();
    let out = cli.run(&[
        "tenant", "create", "acme", "--name", "Acme Inc", "--plan", "pro", "--domain", "Acme.com",
    ]);
    out.assert_code(0);
    let tenant = out.json();
    assert_eq!(tenant["slug"], "acme");
    assert_eq!(tenant["name"], "Acme Inc");
    assert_eq!(tenant["plan"], "pro");
    assert_eq!(tenant["status"], "active");
    assert_eq!(tenant["domains"], serde_json::json!(["acme.com"]));
    assert!(tenant["schema_version"].as_i64().unwrap() > 0);
    let database = tenant["database"].as_str().unwrap();
    assert!(cli.database(database).exists().await);
    if on_files() {
        assert_eq!(databases(&cli), vec![database.to_owned()]);
    }
}

#[test]
fn bad_arguments_exit_2_and_create_nothing() {
    let cli = Cli::new();
    let cases: &[&[&str]] = &[
        &["tenant", "create", "Bad_Slug"],
        &["tenant", "create", "ab"],
        &["tenant", "create", " acme "],
        &["tenant", "create", "admin"],
        &["tenant", "create", "acme", "--plan", "platinum"],
        &["tenant", "create", "acme", "--server", "mars"],
        &["tenant", "create", "acme", "--domain", "not a domain"],
        &["tenant", "create", "acme", "--owner-email", "a@x.com"],
        &["tenant", "create"],
        &["tenant", "frobnicate", "acme"],
        &["tenant", "show", "ACME"],
        &["tenant", "suspend", "ab"],
        &["tenant", "resume", "a--b"],
        &["tenant", "delete", "bad!", "--yes"],
        &["migrate", "--concurrency", "0"],
    ];
    for args in cases {
        let out = cli.run(args);
        assert_eq!(out.code, 2, "silo {}: {out:?}", args.join(" "));
        assert!(
            !out.stderr.trim().is_empty(),
            "silo {} says why",
            args.join(" ")
        );
    }
    let slug = cli.run(&["tenant", "create", "Bad_Slug"]);
    assert!(slug.stderr.contains("slug"), "{slug:?}");
    let plan = cli.run(&["tenant", "create", "acme", "--plan", "platinum"]);
    assert!(plan.stderr.contains("plan"), "{plan:?}");

    // A slug that could be one but names no tenant is a failed operation, not a bad argument.
    let unknown = cli.run(&["tenant", "show", "nobody"]);
    unknown.assert_code(1);
    assert!(unknown.stderr.contains("not found"), "{unknown:?}");

    let list = cli.run(&["tenant", "list"]);
    list.assert_code(0);
    assert_eq!(list.stdout.lines().count(), 1, "only the header: {list:?}");
    assert!(databases(&cli).is_empty());
}

#[test]
fn an_existing_slug_exits_1() {
    let cli = Cli::new();
    let first = cli.run(&["tenant", "create", "acme"]);
    first.assert_code(0);
    let again = cli.run(&["tenant", "create", "acme"]);
    again.assert_code(1);
    assert!(again.stderr.contains("acme"), "{again:?}");
    let shown = cli.run(&["tenant", "show", "acme"]).json();
    assert_eq!(
        shown["id"],
        first.json()["id"],
        "the first tenant is untouched"
    );
    if on_files() {
        assert_eq!(databases(&cli).len(), 1);
    }
}

#[test]
fn tenants_can_be_listed_shown_suspended_and_resumed() {
    let cli = Cli::new();
    let acme = cli.run(&["tenant", "create", "acme"]).json();
    cli.run(&["tenant", "create", "globex"]).assert_code(0);

    let list = cli.run(&["tenant", "list"]);
    list.assert_code(0);
    let rows: Vec<&str> = list.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{list:?}");
    assert!(
        rows[0].starts_with("acme") && rows[1].starts_with("globex"),
        "oldest first: {list:?}"
    );
    assert!(rows[0].contains("active") && rows[0].contains(acme["id"].as_str().unwrap()));

    let shown = cli.run(&["tenant", "show", "acme"]);
    shown.assert_code(0);
    assert_eq!(shown.json(), acme);
    cli.run(&["tenant", "show", "ghost"]).assert_code(1);

    let suspended = cli.run(&["tenant", "suspend", "acme"]);
    suspended.assert_code(0);
    assert_eq!(suspended.json()["status"], "suspended");
    assert_eq!(
        cli.run(&["tenant", "show", "acme"]).json()["status"],
        "suspended"
    );
    let resumed = cli.run(&["tenant", "resume", "acme"]);
    resumed.assert_code(0);
    assert_eq!(resumed.json()["status"], "active");
    cli.run(&["tenant", "suspend", "ghost"]).assert_code(1);
}

#[tokio::test]
async fn delete_needs_yes_and_then_removes_the_database() {
    let cli = Cli::new();
    let created = cli.run(&["tenant", "create", "acme"]);
    created.assert_code(0);
    let database = cli.database(created.json()["database"].as_str().unwrap());
    assert!(database.exists().await);

    let refused = cli.run(&["tenant", "delete", "acme"]);
    refused.assert_code(2);
    assert!(refused.stderr.contains("--yes"), "{refused:?}");
    assert!(database.exists().await);
    cli.run(&["tenant", "show", "acme"]).assert_code(0);

    cli.run(&["tenant", "delete", "acme", "--yes"])
        .assert_code(0);
    assert!(!database.exists().await, "{database:?}");
    if on_files() {
        assert!(databases(&cli).is_empty(), "{:?}", cli.tenant_files());
    }
    cli.run(&["tenant", "show", "acme"]).assert_code(1);
    cli.run(&["tenant", "delete", "acme", "--yes"])
        .assert_code(1);
}

#[tokio::test]
async fn an_owner_created_with_a_password_on_stdin_can_sign_in() {
    let cli = Cli::new();
    let args = [
        "tenant",
        "create",
        "acme",
        "--owner-email",
        "Boss@Acme.com",
        "--owner-password-stdin",
    ];
    cli.run_with_stdin(&args, "boss-password\n").assert_code(0);
    let short = cli.run_with_stdin(
        &[
            "tenant",
            "create",
            "globex",
            "--owner-email",
            "a@x.com",
            "--owner-password-stdin",
        ],
        "short\n",
    );
    short.assert_code(2);
    assert!(
        !short.stderr.contains("short\n"),
        "the password is never echoed"
    );

    let app = serve(&cli, |_| {}).await;
    let owner = app
        .tenant("acme")
        .login("boss@acme.com", "boss-password")
        .await;
    let me = app.tenant("acme").get("/v1/me", &owner.access_token).await;
    assert_eq!(me.body["role"], "owner");
    app.tenant("acme")
        .try_login("boss@acme.com", "boss-password\n")
        .await
        .assert_error(401, "invalid_credentials");
    app.tenant("globex")
        .try_login("a@x.com", "short")
        .await
        .assert_error(404, "tenant_not_found");
}

#[test]
fn a_half_provisioned_tenant_is_finished_by_creating_it_again() {
    if crate::helpers::sqlite_files_only() {
        return;
    }
    let cli = Cli::new();
    // A regular file where the tenants directory should be: the database cannot be created.
    std::fs::write(cli.tenants_dir(), b"in the way").unwrap();
    let failed = cli.run(&["tenant", "create", "acme"]);
    failed.assert_code(1);
    let half = cli.run(&["tenant", "show", "acme"]);
    half.assert_code(0);
    let half = half.json();
    assert_eq!(half["status"], "provisioning", "{half}");
    assert!(
        half["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "the reason is kept: {half}"
    );
    assert_eq!(std::fs::read(cli.tenants_dir()).unwrap(), b"in the way");
    let stray: Vec<String> = list_dir(&cli.data_dir())
        .into_iter()
        .filter(|n| n.contains(".partial") || n.contains(".building"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    std::fs::remove_file(cli.tenants_dir()).unwrap();
    let finished = cli.run(&["tenant", "create", "acme"]);
    finished.assert_code(0);
    let tenant = finished.json();
    assert_eq!(tenant["status"], "active");
    assert_eq!(tenant["id"], half["id"], "the same tenant, finished");
    assert_eq!(
        databases(&cli),
        vec![tenant["database"].as_str().unwrap().to_owned()]
    );
    let leftovers: Vec<String> = cli
        .tenant_files()
        .into_iter()
        .filter(|n| n.contains(".partial") || n.contains(".building"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    cli.run(&["tenant", "create", "acme"]).assert_code(1);
}

#[test]
fn a_run_finishing_a_tenant_that_another_run_is_building_is_refused_and_harms_nothing() {
    if crate::helpers::sqlite_files_only() {
        return;
    }
    let cli = Cli::new();
    let plans = cli.dir.path().join("plans");
    for plan in ["free", "broken"] {
        std::fs::create_dir_all(plans.join(plan)).unwrap();
        std::fs::write(plans.join(plan).join("plan.toml"), "open_signup = true\n").unwrap();
    }
    std::fs::write(
        plans.join("broken").join("seed.sql"),
        "INSERT INTO nowhere VALUES (1);",
    )
    .unwrap();
    let mut env = cli.env();
    env.retain(|(key, _)| *key != "SILO__TEMPLATES_DIR");
    env.push(("SILO__TEMPLATES_DIR", plans.display().to_string()));
    // A first run fails part way: acme stays in provisioning, with no database.
    cli.run_with(
        &["tenant", "create", "acme", "--plan", "broken"],
        &env,
        None,
    )
    .assert_code(1);
    let half = cli.run_with(&["tenant", "show", "acme"], &env, None).json();
    assert_eq!(half["status"], "provisioning");
    let database = half["database"].as_str().unwrap().to_owned();
    assert!(databases(&cli).is_empty(), "{:?}", cli.tenant_files());

    // Another run holds acme's build lock, as a run in another process would while it builds.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cli.tenants_dir().join(format!(".{database}.lock")))
        .unwrap();
    lock.try_lock().unwrap();
    let refused = cli.run_with(&["tenant", "create", "acme"], &env, None);
    refused.assert_code(1);
    assert!(refused.stderr.contains("another run"), "{refused:?}");
    // Nor can it be deleted from under the run building it.
    let delete = cli.run_with(&["tenant", "delete", "acme", "--yes"], &env, None);
    delete.assert_code(1);
    assert!(delete.stderr.contains("another run"), "{delete:?}");
    let still = cli.run_with(&["tenant", "show", "acme"], &env, None).json();
    assert_eq!(still["status"], "provisioning");
    assert!(databases(&cli).is_empty(), "the refused run built nothing");

    // Once the lock is free and the plan's seed mended, a run finishes acme.
    drop(lock);
    std::fs::write(plans.join("broken").join("seed.sql"), "").unwrap();
    let finished = cli.run_with(&["tenant", "create", "acme"], &env, None);
    finished.assert_code(0);
    assert_eq!(finished.json()["status"], "active");
    assert_eq!(databases(&cli), vec![database.clone()]);
    // The run that finished it took its lock file along.
    let lock_file = format!(".{database}.lock");
    assert!(
        !cli.tenant_files().contains(&lock_file),
        "{:?}",
        cli.tenant_files()
    );
}

#[tokio::test]
async fn changes_made_by_the_cli_reach_a_running_server_within_the_cache_ttl() {
    let cli = Cli::new();
    cli.run(&["tenant", "create", "acme"]).assert_code(0);
    let app = serve(&cli, |s| s.registry.cache_ttl_secs = 1).await;
    let session = app.tenant("acme").signup("a@x.com", "a-password").await;
    let client = app.tenant("acme");
    let me = || client.get("/v1/me", &session.access_token);
    assert_eq!(me().await.status, 200);
    let wait = || tokio::time::sleep(Duration::from_millis(1500));

    cli.run(&["tenant", "suspend", "acme"]).assert_code(0);
    wait().await;
    me().await.assert_error(403, "tenant_suspended");

    cli.run(&["tenant", "resume", "acme"]).assert_code(0);
    wait().await;
    assert_eq!(me().await.status, 200);

    cli.run(&["tenant", "delete", "acme", "--yes"])
        .assert_code(0);
    wait().await;
    me().await.assert_error(404, "tenant_not_found");
}
