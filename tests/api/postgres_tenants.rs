//! Tenant databases on a PostgreSQL server (`[servers.<name>] url = "postgres://..."`): each
//! tenant has its own database, owned by its own role; no tenant's role can open another
//! tenant's database; the router connects as the tenant's role, within a `CONNECTION LIMIT` of
//! the pool's size; deleting a tenant drops its database and role though connections are open;
//! and a migration fan-out moves every tenant but one that conflicts, which is left unchanged.
//!
//! The server is the one at `SILO_TEST_POSTGRES_URL` (default the local one); its admin role
//! is silo's. Every database and role a test makes is dropped when the test ends.

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, Row};

use crate::helpers::{fresh_database, spawn_app_with, Cli, TestApp};

fn admin_url() -> String {
    std::env::var("SILO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Drops the tenant databases and roles named in it when the test ends, passed or not.
#[derive(Default)]
struct Leftovers(Vec<String>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.0);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut admin = PgConnection::connect(&admin_url()).await?;
                    for name in names {
                        admin
                            .execute(
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                            )
                            .await?;
                        admin
                            .execute(format!("DROP ROLE IF EXISTS {name}").as_str())
                            .await?;
                    }
                    Ok::<(), sqlx::Error>(())
                })
        })
        .join();
    }
}

/// A silo whose one server is the PostgreSQL server, or none where there is no PostgreSQL.
async fn on_postgres() -> Option<TestApp> {
    // Reachable (or, in CI, a failure): the helper checks and says why it skips.
    fresh_database().await?;
    Some(
        spawn_app_with(|settings| {
            settings.servers.get_mut("local").unwrap().url = admin_url();
            settings.pool.max_connections_per_tenant = 3;
        })
        .await,
    )
}

async fn admin() -> PgConnection {
    PgConnection::connect(&admin_url()).await.unwrap()
}

/// `url` of the admin role with `user` and `database` instead.
fn url_as(user: &str, database: &str) -> String {
    let mut url = url::Url::parse(&admin_url()).unwrap();
    url.set_username(user).unwrap();
    url.set_password(None).unwrap();
    url.set_path(&format!("/{database}"));
    url.to_string()
}

#[tokio::test]
async fn each_tenant_has_a_database_and_a_role_of_its_own_that_no_other_tenant_can_open() {
    let Some(app) = on_postgres().await else {
        return;
    };
    let mut leftovers = Leftovers::default();
    let mut tenants: Vec<Value> = Vec::new();
    for slug in ["acme", "globex"] {
        let reply = app
            .admin(
                Method::POST,
                "/admin/v1/tenants",
                Some(json!({"slug": slug, "owner_email": format!("owner@{slug}.test"), "owner_password": "owner-password"})),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        leftovers
            .0
            .push(reply.body["database"].as_str().unwrap().to_owned());
        tenants.push(reply.body);
    }
    let (acme_db, globex_db) = (
        tenants[0]["database"].as_str().unwrap(),
        tenants[1]["database"].as_str().unwrap(),
    );
    assert!(acme_db.starts_with("silo_t_"), "{acme_db}");

    let mut admin = admin().await;
    for db in [acme_db, globex_db] {
        let row = sqlx::query(
            "SELECT r.rolname AS owner, r.rolconnlimit AS limit_, \
                    has_database_privilege('public', d.datname, 'CONNECT') AS public_connects \
             FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = $1",
        )
        .bind(db)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert_eq!(row.get::<String, _>("owner"), db, "owned by its own role");
        assert_eq!(
            row.get::<i32, _>("limit_"),
            3,
            "CONNECTION LIMIT = the pool's size"
        );
        assert!(
            !row.get::<bool, _>("public_connects"),
            "CONNECT revoked from PUBLIC"
        );
    }
    // acme's role cannot open globex's database, whatever its password.
    let crossed = PgConnection::connect(&url_as(acme_db, globex_db)).await;
    let Err(error) = crossed else {
        panic!("acme's role is refused at globex's database");
    };
    assert!(error.to_string().contains("permission denied"), "{error}");
    // Its own it can, and its tables are its own.
    let mut own = PgConnection::connect(&url_as(acme_db, acme_db))
        .await
        .unwrap();
    let foreign: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> current_user",
    )
    .fetch_one(&mut own)
    .await
    .unwrap();
    assert_eq!(foreign, 0, "every table belongs to the tenant's role");
    own.close().await.unwrap();

    // The tenant API works, isolated, and its connections are the tenant's role.
    let acme = app
        .tenant("acme")
        .login("owner@acme.test", "owner-password")
        .await;
    let globex = app
        .tenant("globex")
        .login("owner@globex.test", "owner-password")
        .await;
    let project = app
        .tenant("acme")
        .create_project(&acme.access_token, "Rocket sled")
        .await;
    app.tenant("globex")
        .assert_project_unreachable(&project, &globex.access_token)
        .await;
    let listed = app
        .tenant("globex")
        .get("/v1/projects", &globex.access_token)
        .await;
    assert_eq!(listed.body["data"], json!([]), "{}", listed.body);
    let users: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = $1",
    )
    .bind(acme_db)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        users,
        vec![acme_db.to_owned()],
        "the router connects as the tenant's role"
    );

    // Deleting a tenant whose pool is open drops its database and its role.
    let deleted = app
        .admin(Method::DELETE, "/admin/v1/tenants/acme?confirm=acme", None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) \
              + (SELECT count(*) FROM pg_roles WHERE rolname = $1)",
    )
    .bind(acme_db)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(left, 0, "neither the database nor the role is left");
    let stats = app
        .admin(Method::GET, "/admin/v1/tenants/globex/stats", None)
        .await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert!(stats.body["database_bytes"].as_u64().unwrap() > 0);
    app.shutdown().await;
}

#[test]
fn a_fanout_over_postgres_tenants_leaves_a_conflicting_one_unchanged_and_moves_the_rest() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if runtime.block_on(fresh_database()).is_none() {
        return;
    }
    let cli = Cli::new();
    let mut env = cli.env();
    env.push(("SILO__SERVERS__LOCAL__URL", admin_url()));
    let mut leftovers = Leftovers::default();
    let mut databases = Vec::new();
    for n in 0..5 {
        let out = cli.run_with(&["tenant", "create", &format!("pg-{n}")], &env, None);
        out.assert_code(0);
        let database = out.json()["database"].as_str().unwrap().to_owned();
        leftovers.0.push(database.clone());
        databases.push(database);
    }
    // Tenant pg-2 already has a table the new migration creates.
    let conflicting = databases[2].clone();
    runtime.block_on(async {
        let mut conn = PgConnection::connect(&url_as("postgres", &conflicting))
            .await
            .unwrap();
        conn.execute("CREATE TABLE labels (id TEXT)").await.unwrap();
    });
    let folder = cli.dir.path().join("migrations");
    std::fs::create_dir_all(&folder).unwrap();
    let schema = silo::schema::TenantSchema::built_in();
    for m in schema.migrations() {
        std::fs::write(
            folder.join(format!("{:04}_{}.sql", m.version, m.description)),
            m.sql.as_ref(),
        )
        .unwrap();
    }
    let next = schema.target_version() + 1;
    std::fs::write(
        folder.join(format!("{next:04}_labels.sql")),
        "ALTER TABLE projects ADD COLUMN colour TEXT;\nCREATE TABLE labels (id TEXT PRIMARY KEY, name TEXT NOT NULL);\n",
    )
    .unwrap();
    let folder_arg = folder.display().to_string();
    let run = cli.run_with(&["migrate", "--migrations", &folder_arg], &env, None);
    run.assert_code(1);
    assert!(run.stderr.contains("pg-2"), "{run:?}");

    let versions = |database: &str| -> (i64, bool) {
        runtime.block_on(async {
            let mut conn = PgConnection::connect(&url_as("postgres", database))
                .await
                .unwrap();
            let version: i64 = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            let colour: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
                 WHERE table_name = 'projects' AND column_name = 'colour')",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            (version, colour)
        })
    };
    for (n, database) in databases.iter().enumerate() {
        let expected = if n == 2 {
            (next - 1, false)
        } else {
            (next, true)
        };
        assert_eq!(versions(database), expected, "pg-{n}");
    }
    // The migrated tables are the tenant's role's, as the template's were.
    runtime.block_on(async {
        let mut conn = PgConnection::connect(&url_as("postgres", &databases[0]))
            .await
            .unwrap();
        let owner: String =
            sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE tablename = 'labels'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(owner, databases[0]);
    });
    let shown = cli.run_with(&["tenant", "show", "pg-2"], &env, None);
    assert_eq!(shown.json()["status"], "migration_failed", "{shown:?}");

    // The conflict removed, a re-run finishes the job.
    runtime.block_on(async {
        let mut conn = PgConnection::connect(&url_as("postgres", &conflicting))
            .await
            .unwrap();
        conn.execute("DROP TABLE labels").await.unwrap();
    });
    cli.run_with(&["migrate", "--migrations", &folder_arg], &env, None)
        .assert_code(0);
    assert_eq!(versions(&conflicting), (next, true));
}

/// Plans whose seeds make a table (`extras`) or try what only the admin role may (`privileged`),
/// in a templates folder of the test's own, beside a copy of the test plans.
fn seeding_plans(app_dir: &std::path::Path) -> std::path::PathBuf {
    let templates = app_dir.join("seeding-templates");
    for (plan, seed) in [
        ("free", ""),
        (
            "extras",
            "CREATE TABLE plan_extras (id TEXT PRIMARY KEY, note TEXT NOT NULL);\n\
             INSERT INTO plan_extras (id, note) VALUES ('welcome', 'seeded');",
        ),
        ("privileged", "CREATE ROLE silo_seed_intruder SUPERUSER;"),
    ] {
        let folder = templates.join(plan);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("plan.toml"), "open_signup = true\n").unwrap();
        std::fs::write(folder.join("seed.sql"), seed).unwrap();
    }
    templates
}

#[tokio::test]
async fn a_plan_seed_runs_as_the_tenant_role_and_what_it_makes_belongs_to_the_tenant() {
    if fresh_database().await.is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let templates = seeding_plans(dir.path());
    let app = spawn_app_with(move |settings| {
        settings.servers.get_mut("local").unwrap().url = admin_url();
        settings.templates_dir = templates;
    })
    .await;
    let mut leftovers = Leftovers::default();

    let made = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"slug": "seeded", "plan": "extras"})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let database = made.body["database"].as_str().unwrap().to_owned();
    leftovers.0.push(database.clone());
    let mut admin = admin().await;
    let mut inside = PgConnection::connect(&url_as("postgres", &database))
        .await
        .unwrap();
    let owner: String = sqlx::query_scalar(
        "SELECT tableowner::text FROM pg_tables WHERE tablename = 'plan_extras'",
    )
    .fetch_one(&mut inside)
    .await
    .unwrap();
    assert_eq!(
        owner, database,
        "the seed's table belongs to the tenant's role"
    );
    inside.close().await.unwrap();

    // A seed that reaches for the admin role's rights fails, as the tenant's role would: the
    // tenant is left provisioning with the reason, and no role was made.
    let refused = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"slug": "greedy", "plan": "privileged"})),
        )
        .await;
    assert!(refused.status >= 500, "{}", refused.body);
    assert!(
        refused.body["error"]["code"].is_string(),
        "{}",
        refused.body
    );
    let greedy = app
        .admin(Method::GET, "/admin/v1/tenants/greedy", None)
        .await;
    assert_eq!(greedy.body["status"], "provisioning", "{}", greedy.body);
    if let Some(name) = greedy.body["database"].as_str() {
        leftovers.0.push(name.to_owned());
    }
    let intruder: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'silo_seed_intruder')",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    if intruder {
        let _ = admin.execute("DROP ROLE silo_seed_intruder").await;
    }
    assert!(!intruder, "the seed ran with the admin role's rights");
}

#[tokio::test]
async fn a_template_build_drops_builds_a_crashed_run_left_behind_and_no_fresh_one() {
    if fresh_database().await.is_none() {
        return;
    }
    let mut leftovers = Leftovers::default();
    let mut admin = admin().await;
    // A build a crashed run started an hour ago, and one another run started just now.
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let old = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, hour_ago, 0));
    let abandoned = format!("silo_building_{}", old.simple());
    let fresh = format!("silo_building_{}", uuid::Uuid::now_v7().simple());
    for name in [&abandoned, &fresh] {
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        leftovers.0.push(name.clone());
    }
    // A tenant schema of this test's own, so its first tenant builds a template.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("migrations");
    std::fs::create_dir_all(&folder).unwrap();
    let schema = silo::schema::TenantSchema::built_in();
    for m in schema.migrations() {
        let name = format!("{:04}_{}.sql", m.version, m.description);
        std::fs::write(folder.join(name), m.sql.as_ref()).unwrap();
    }
    let marker = uuid::Uuid::now_v7().simple().to_string();
    std::fs::write(
        folder.join(format!("{:04}_marker.sql", schema.target_version() + 1)),
        format!("CREATE TABLE marker_{marker} (id TEXT);\n"),
    )
    .unwrap();
    let own = silo::schema::TenantSchema::load(&folder).unwrap();
    leftovers
        .0
        .push(format!("silo_template_{}", own.fingerprint()));
    let app = spawn_app_with(move |settings| {
        settings.servers.get_mut("local").unwrap().url = admin_url();
        settings.migrations.dir = folder;
    })
    .await;
    let made = app.create_tenant("builder").await;
    leftovers
        .0
        .push(made["database"].as_str().unwrap().to_owned());

    let left: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname = ANY($1) ORDER BY datname",
    )
    .bind(vec![abandoned.clone(), fresh.clone()])
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        left,
        vec![fresh],
        "the abandoned build is dropped, the fresh one kept"
    );
}
