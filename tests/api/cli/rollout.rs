//! Rolling a new tenant migration out from a folder (`silo migrate --migrations DIR`) over a
//! fleet: a failing tenant changes nothing and stops no one else, target groups and
//! `--max-failures` bound a rollout, a run killed part-way leaves every tenant at the old or the
//! new version and a re-run finishes it, and two runs at once never migrate one tenant together.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
};

use futures::{stream, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use silo::{
    control::{IfExists, ProvisionRequest},
    schema::TenantSchema,
};

use super::serve;
use crate::helpers::{Cli, TenantDatabase};

/// The new migration every test rolls out: a column and an index, as a real one would.
const NEW: &str = "ALTER TABLE projects ADD COLUMN colour TEXT;\n\
                   CREATE INDEX projects_colour ON projects (colour);\n\
                   CREATE TABLE labels (id TEXT PRIMARY KEY, name TEXT NOT NULL);\n";

fn built_in() -> i64 {
    TenantSchema::built_in().target_version()
}

/// A folder with the built-in tenant migrations and [`NEW`] after them.
fn migrations_folder(cli: &Cli) -> PathBuf {
    let dir = cli.dir.path().join("migrations");
    std::fs::create_dir_all(&dir).unwrap();
    for m in TenantSchema::built_in().migrations() {
        let name = format!("{:04}_{}.sql", m.version, m.description);
        std::fs::write(dir.join(name), m.sql.as_ref()).unwrap();
    }
    std::fs::write(dir.join(format!("{:04}_labels.sql", built_in() + 1)), NEW).unwrap();
    dir
}

/// Provisions `<prefix>-<n>` for each n (on `plan`), 8 at a time, through one silo on the
/// CLI's data directory, and answers their slugs and databases in id order, which is the
/// order a run takes them in.
async fn provision(
    cli: &Cli,
    prefix: &str,
    count: usize,
    plan: &str,
) -> Vec<(String, TenantDatabase)> {
    let app = serve(cli, |_| {}).await;
    let slugs: Vec<String> = (0..count).map(|n| format!("{prefix}-{n}")).collect();
    let records: Vec<_> = stream::iter(slugs)
        .map(|slug| {
            let request = ProvisionRequest {
                slug,
                name: None,
                plan: Some(plan.into()),
                server: None,
                domains: vec![],
                owner: None,
                ..Default::default()
            };
            silo::control::provision(&app.state, request, IfExists::Conflict)
        })
        .buffered(8)
        .collect()
        .await;
    let mut records: Vec<_> = records
        .into_iter()
        .map(|record| record.expect("provisioned"))
        .collect();
    records.sort_by_key(|record| record.id.to_string());
    let tenants = records
        .into_iter()
        .map(|record| (record.slug.to_string(), cli.database(&record.database)))
        .collect();
    app.shutdown().await;
    tenants
}

/// The versions in a tenant database's migration history, and whether it has [`NEW`]'s column.
async fn carried(database: &TenantDatabase) -> (Vec<i64>, bool) {
    let versions = database.versions().await;
    let colour = database
        .try_execute("SELECT colour FROM projects LIMIT 1")
        .await
        .is_ok();
    (versions, colour)
}

/// Every tenant database is whole at one version: the old (no new column) or the new.
async fn assert_each_at_old_or_new(tenants: &[(String, TenantDatabase)]) -> usize {
    let old: Vec<i64> = (1..=built_in()).collect();
    let new: Vec<i64> = (1..=built_in() + 1).collect();
    let mut migrated = 0;
    for (slug, database) in tenants {
        match carried(database).await {
            (versions, false) if versions == old => {}
            (versions, true) if versions == new => migrated += 1,
            other => panic!("{slug} is half-migrated: {other:?}"),
        }
    }
    migrated
}

/// Makes the tenant's database conflict with [`NEW`]: it already has a `labels` table.
async fn conflict(database: &TenantDatabase) {
    database.execute("CREATE TABLE labels (x INTEGER);").await;
}

async fn unconflict(database: &TenantDatabase) {
    database.execute("DROP TABLE labels;").await;
}

fn status(cli: &Cli, folder: &Path) -> Value {
    let env = with_folder(cli, folder);
    let out = cli.run_with(&["migrate", "status"], &env, None);
    out.assert_code(0);
    out.json()
}

/// The CLI's settings with `migrations.dir` set, as an operator would set it.
fn with_folder(cli: &Cli, folder: &Path) -> Vec<(&'static str, String)> {
    let mut env = cli.env();
    env.push(("SILO__MIGRATIONS__DIR", folder.display().to_string()));
    env
}

#[tokio::test]
async fn a_failing_tenant_is_left_unchanged_and_unavailable_while_the_other_49_are_migrated() {
    let cli = Cli::new();
    let tenants = provision(&cli, "t", 50, "free").await;
    let folder = migrations_folder(&cli);
    let (bad_slug, bad_file) = &tenants[7];
    conflict(bad_file).await;

    let out = cli.run(&["migrate", "--migrations", folder.to_str().unwrap()]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains(&format!("FAILED     {bad_slug} at {}", built_in())),
        "the failure is listed: {}",
        out.stderr
    );
    assert!(out.stderr.contains("49 migrated"), "{}", out.stderr);
    assert_eq!(assert_each_at_old_or_new(&tenants).await, 49);
    assert_eq!(
        carried(bad_file).await.0,
        (1..=built_in()).collect::<Vec<_>>()
    );
    let after = status(&cli, &folder);
    assert_eq!(
        after["tenants_by_version"],
        json!({ built_in().to_string(): 1, (built_in() + 1).to_string(): 49 })
    );
    assert_eq!(after["failed"][0]["slug"], bad_slug.as_str(), "{after}");

    {
        let dir = folder.clone();
        let app = serve(&cli, move |s| s.migrations.dir = dir).await;
        app.tenant(bad_slug)
            .send(Method::GET, "/v1/projects", None, None)
            .await
            .assert_unavailable();
        let other = app
            .tenant(&tenants[8].0)
            .send(Method::GET, "/v1/projects", None, None)
            .await;
        assert_eq!(other.status, 401, "a neighbour is served: {}", other.body);
        app.shutdown().await;
    }

    // The conflict removed, a re-run finishes the job.
    unconflict(bad_file).await;
    let env = with_folder(&cli, &folder);
    cli.run_with(&["migrate"], &env, None).assert_code(0);
    assert_eq!(assert_each_at_old_or_new(&tenants).await, 50);
    let healed = status(&cli, &folder);
    assert_eq!(
        healed["tenants_by_version"],
        json!({ (built_in() + 1).to_string(): 50 })
    );
    assert_eq!(healed["failed"], json!([]));
}

#[tokio::test]
async fn target_groups_pick_tenants_by_slug_and_plan_and_max_failures_stops_a_run() {
    let cli = Cli::new();
    let pro = provision(&cli, "p", 3, "pro").await;
    let free = provision(&cli, "f", 8, "free").await;
    let folder = migrations_folder(&cli);
    let env = with_folder(&cli, &folder);
    let run = |args: &[&str]| cli.run_with(args, &env, None);

    let dry = run(&["migrate", "--plan", "pro", "--dry-run"]);
    dry.assert_code(0);
    assert_eq!(
        dry.stderr.matches("would migrate p-").count(),
        3,
        "{}",
        dry.stderr
    );
    assert!(!dry.stderr.contains("f-"), "{}", dry.stderr);
    assert_eq!(
        assert_each_at_old_or_new(&pro).await,
        0,
        "a dry run changes nothing"
    );

    run(&["migrate", "--plan", "nosuch"]).assert_code(2);
    let named = &free[0].0;
    run(&["migrate", "--tenant", named, "--plan", "pro"]).assert_code(0);
    assert_eq!(assert_each_at_old_or_new(&pro).await, 3);
    assert_eq!(
        assert_each_at_old_or_new(&free).await,
        1,
        "{named} was named"
    );

    // Four of the rest conflict; one at a time (in id order), the run stops at the second
    // failure.
    for (_, file) in [&free[2], &free[4], &free[6], &free[7]] {
        conflict(file).await;
    }
    let stopped = run(&["migrate", "--concurrency", "1", "--max-failures", "2"]);
    stopped.assert_code(1);
    let listed = stopped.stderr.lines().filter(|l| l.starts_with("  FAILED"));
    assert_eq!(listed.count(), 2, "{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .contains("stopped after 2 failures, 3 tenants not started"),
        "{}",
        stopped.stderr
    );
    // free[1] and free[3] were migrated before the run stopped at free[4]; free[5] to free[7]
    // were never started.
    assert_eq!(assert_each_at_old_or_new(&free).await, 3);
    run(&["migrate", "--max-failures", "0"]).assert_code(2);
}

#[tokio::test]
async fn a_run_killed_part_way_leaves_each_tenant_whole_and_a_rerun_finishes_every_one() {
    let cli = Cli::new();
    let tenants = provision(&cli, "k", 200, "free").await;
    let folder = migrations_folder(&cli);
    let env = with_folder(&cli, &folder);

    let mut child = cli
        .command(&["migrate", "--concurrency", "2"], &env)
        .spawn()
        .unwrap();
    // Not a terminal: one line per tenant migrated. Killed once 20 are done.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut done = 0;
    while done < 20 {
        let line = lines.next().expect("the run goes on").unwrap();
        done += usize::from(line.starts_with("migrated"));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let migrated = assert_each_at_old_or_new(&tenants).await;
    assert!(
        (20..200).contains(&migrated),
        "killed part-way: {migrated} migrated"
    );
    let out = cli.run_with(&["migrate"], &env, None);
    out.assert_code(0);
    assert_eq!(assert_each_at_old_or_new(&tenants).await, 200);
    let after = status(&cli, &folder);
    assert_eq!(
        after["tenants_by_version"],
        json!({ (built_in() + 1).to_string(): 200 })
    );
    let listed = cli.run_with(&["tenant", "list"], &env, None);
    assert!(
        !listed.stdout.contains("migrating"),
        "a tenant is left migrating: {}",
        listed.stdout
    );
}

#[tokio::test]
async fn two_runs_at_once_from_two_processes_never_migrate_a_tenant_together() {
    let cli = Cli::new();
    let tenants = provision(&cli, "c", 100, "free").await;
    let folder = migrations_folder(&cli);
    let env = with_folder(&cli, &folder);
    let runs: Vec<_> = (0..2)
        .map(|_| {
            cli.command(&["migrate", "--concurrency", "4"], &env)
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let output = run.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "a run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Had both run one tenant's ALTER TABLE, the second would have failed on its column.
    assert_eq!(assert_each_at_old_or_new(&tenants).await, 100);
    assert_eq!(
        status(&cli, &folder)["tenants_by_version"],
        json!({ (built_in() + 1).to_string(): 100 })
    );
}
