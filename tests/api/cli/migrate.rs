//! `silo migrate` and `silo migrate status`: the fan-out migrates what it can, lists what it
//! could not, and a failed tenant is unavailable until a later run succeeds.

use reqwest::Method;
use serde_json::{json, Value};

use super::serve;
use crate::helpers::{Cli, Output};

/// The newest embedded tenant migration, as the library sees it.
fn target_version() -> i64 {
    silo::schema::TenantSchema::built_in().target_version()
}

fn status(cli: &Cli) -> Value {
    let out = cli.run(&["migrate", "status"]);
    out.assert_code(0);
    out.json()
}

/// Pretends the registry's view of every tenant is from before the tenant migrations, as after
/// an upgrade that shipped new ones.
async fn rewind_registry(cli: &Cli) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&cli.registry_url()).await.unwrap();
    sqlx::query("UPDATE tenants SET schema_version = 0")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

fn create(cli: &Cli, slug: &str) -> Value {
    let out: Output = cli.run(&["tenant", "create", slug]);
    out.assert_code(0);
    out.json()
}

#[test]
fn migrate_succeeds_and_status_shows_every_tenant_at_the_target() {
    let cli = Cli::new();
    create(&cli, "acme");
    create(&cli, "globex");
    cli.run(&["migrate"]).assert_code(0);
    cli.run(&["migrate", "--dry-run"]).assert_code(0);
    cli.run(&["migrate", "--tenant", "acme", "--concurrency", "2"])
        .assert_code(0);
    cli.run(&["migrate", "--tenant", "ghost"]).assert_code(2);

    let status = status(&cli);
    let target = target_version();
    assert_eq!(status["target_version"], target, "{status}");
    assert_eq!(
        status["tenants_by_version"],
        json!({ target.to_string(): 2 })
    );
    assert_eq!(status["failed"], json!([]));
}

#[tokio::test]
async fn a_tenant_that_fails_to_migrate_is_listed_and_unavailable_while_the_rest_move_on() {
    let cli = Cli::new();
    let acme = create(&cli, "acme");
    create(&cli, "globex");
    rewind_registry(&cli).await;
    let database = cli.database(acme["database"].as_str().unwrap());
    // Its database goes missing (a volume not mounted, say).
    let aside = database.take_away("aside").await;

    let dry = cli.run(&["migrate", "--dry-run"]);
    dry.assert_code(0);
    assert_eq!(
        status(&cli)["tenants_by_version"],
        json!({"0": 2}),
        "a dry run changes nothing"
    );

    let out = cli.run(&["migrate"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("acme"),
        "the failure is listed: {out:?}"
    );
    let target = target_version();
    let after = status(&cli);
    assert_eq!(
        after["tenants_by_version"],
        json!({"0": 1, target.to_string(): 1}),
        "globex was migrated: {after}"
    );
    let failed = after["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{after}");
    assert_eq!(failed[0]["slug"], "acme");
    assert_eq!(failed[0]["version"], 0);
    assert!(!failed[0]["error"].as_str().unwrap().is_empty());
    let shown = cli.run(&["tenant", "show", "acme"]).json();
    assert_eq!(shown["status"], "migration_failed");

    {
        let app = serve(&cli, |_| {}).await;
        let reply = app
            .tenant("acme")
            .send(Method::GET, "/v1/projects", None, None)
            .await;
        reply.assert_unavailable();
        app.tenant("globex")
            .assert_serves("g@x.com", "g-password")
            .await;
        app.shutdown().await;
    }

    // Repaired, a later run finishes the job.
    aside.put_back(&database).await;
    cli.run(&["migrate"]).assert_code(0);
    let healed = status(&cli);
    assert_eq!(
        healed["tenants_by_version"],
        json!({ target.to_string(): 2 })
    );
    assert_eq!(healed["failed"], json!([]));
    assert_eq!(
        cli.run(&["tenant", "show", "acme"]).json()["status"],
        "active"
    );
}
