//! Tenants across servers: a second PostgreSQL cluster of the test's own, with `scram-sha-256`,
//! beside the embedded SQLite server. A tenant goes to the server it names, else to the one
//! with the fewest tenants; its role's derived password is really checked (no other tenant's
//! role or password opens its database, and a router with another master key reaches no
//! tenant there); and a server that stops makes only its own tenants unavailable, which serve
//! again once it is back, without restarting silo.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use silo::{
    config::ServerSettings,
    secrets::{Purpose, Secrets},
    tenant::TenantId,
    Settings,
};
use sqlx::{Connection, PgConnection};

use crate::helpers::{spawn_app_with, Cluster, TestApp};

const MASTER_KEY: &str = "test-master-key-0123456789abcdef-0123456789";

fn with_second(settings: &mut Settings, cluster: &Cluster) {
    settings.servers.insert(
        "second".into(),
        ServerSettings {
            url: cluster.admin_url(),
            max_connections: 60,
        },
    );
}

async fn create(app: &TestApp, slug: &str, server: Option<&str>) -> Value {
    let mut body = json!({"slug": slug, "owner_email": format!("owner@{slug}.test"), "owner_password": "owner-password"});
    if let Some(server) = server {
        body["server"] = json!(server);
    }
    let reply = app
        .admin(Method::POST, "/admin/v1/tenants", Some(body))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

fn password(master_key: &str, tenant: &Value) -> String {
    let id: TenantId = tenant["id"].as_str().unwrap().parse().unwrap();
    let key = Secrets::from_bytes(master_key.as_bytes().to_vec());
    hex::encode(key.derive_versioned(Purpose::Database, id, 1))
}

fn url(cluster: &Cluster, role: &str, password: &str, database: &str) -> String {
    format!(
        "postgres://{role}:{password}@127.0.0.1:{}/{database}",
        cluster.port
    )
}

#[tokio::test]
async fn placement_and_derived_passwords_on_a_second_server_with_real_authentication() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let app = spawn_app_with(|settings| with_second(settings, &cluster)).await;
    let acme = create(&app, "acme", Some("second")).await;
    let globex = create(&app, "globex", Some("second")).await;
    assert_eq!(acme["server"], "second");
    // Named nowhere: the server with the fewest tenants (local has none).
    let initech = create(&app, "initech", None).await;
    assert_eq!(initech["server"], "local");

    let (acme_db, globex_db) = (
        acme["database"].as_str().unwrap(),
        globex["database"].as_str().unwrap(),
    );
    let (acme_pw, globex_pw) = (password(MASTER_KEY, &acme), password(MASTER_KEY, &globex));
    // Its own role and derived password open its database...
    let own = PgConnection::connect(&url(&cluster, acme_db, &acme_pw, acme_db)).await;
    assert!(own.is_ok(), "{:?}", own.err());
    own.unwrap().close().await.unwrap();
    // ...no other tenant's role does, with its own password or with acme's...
    let crossed = PgConnection::connect(&url(&cluster, globex_db, &globex_pw, acme_db)).await;
    let Err(crossed) = crossed else {
        panic!("globex's role opened acme's database");
    };
    assert!(
        crossed.to_string().contains("permission denied"),
        "{crossed}"
    );
    let wrong = PgConnection::connect(&url(&cluster, globex_db, &acme_pw, globex_db)).await;
    let Err(wrong) = wrong else {
        panic!("globex's role took acme's password");
    };
    assert!(
        wrong.to_string().contains("password authentication failed"),
        "{wrong}"
    );
    // ...and a password derived from another master key opens nothing.
    let other_key = password("another-master-key-0123456789abcdef-012345", &acme);
    assert!(
        PgConnection::connect(&url(&cluster, acme_db, &other_key, acme_db))
            .await
            .is_err()
    );

    // The tenant API on the second server, isolated from the first's tenants.
    let session = app
        .tenant("acme")
        .login("owner@acme.test", "owner-password")
        .await;
    let project = app
        .tenant("acme")
        .create_project(&session.access_token, "On the second server")
        .await;
    let other = app
        .tenant("initech")
        .login("owner@initech.test", "owner-password")
        .await;
    app.tenant("initech")
        .assert_project_unreachable(&project, &other.access_token)
        .await;

    // A router with another master key, on the same registry and servers, reaches no tenant
    // of the second server: its derived passwords are wrong, and the server says so.
    let registry = app.state.settings.registry_url();
    let tenants = app.tenants_dir();
    let stranger = spawn_app_with(|settings| {
        with_second(settings, &cluster);
        settings.registry.url = registry;
        settings.servers.get_mut("local").unwrap().url = format!("sqlite://{}", tenants.display());
        settings.secrets.master_key = "another-master-key-0123456789abcdef-012345".into();
    })
    .await;
    stranger
        .tenant("globex")
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "owner@globex.test", "password": "owner-password"}),
        )
        .await
        .assert_unavailable();
    stranger.shutdown().await;
    app.shutdown().await;
}

/// Signs in to `slug` and reads its projects once; the status of that read.
async fn read(app: &TestApp, slug: &str, token: &str) -> u16 {
    app.tenant(slug).get("/v1/projects", token).await.status
}

#[tokio::test]
async fn a_server_that_stops_makes_only_its_tenants_unavailable_until_it_is_back() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let app = spawn_app_with(|settings| {
        with_second(settings, &cluster);
        settings.pool.acquire_timeout_ms = 500;
    })
    .await;
    create(&app, "far", Some("second")).await;
    create(&app, "near", Some("local")).await;
    let far = app
        .tenant("far")
        .login("owner@far.test", "owner-password")
        .await;
    let near = app
        .tenant("near")
        .login("owner@near.test", "owner-password")
        .await;
    assert_eq!(read(&app, "far", &far.access_token).await, 200);

    cluster.stop();
    // Under load from both tenants: the stopped server's tenant is a clear 503, never a 500,
    // and the other server's tenant is not touched.
    let mut far_answers = Vec::new();
    let far_client = app.tenant("far");
    for _ in 0..20 {
        let (f, n) = tokio::join!(
            far_client.get("/v1/projects", &far.access_token),
            read(&app, "near", &near.access_token)
        );
        assert_eq!(n, 200, "the first server's tenant keeps serving");
        far_answers.push((f.status, f.code().to_owned()));
    }
    assert!(
        far_answers
            .iter()
            .all(|(status, code)| *status == 503 && code == "tenant_unavailable"),
        "{far_answers:?}"
    );

    // The control path says the same, and leaves nothing half made: stats, and a tenant
    // provisioned onto the stopped server, are 503; that tenant stays `provisioning` (clients
    // get 503) until a re-run, as the CLI's, finishes it once the server is back.
    app.admin(Method::GET, "/admin/v1/tenants/far/stats", None)
        .await
        .assert_unavailable();
    let late = json!({"slug": "late", "server": "second"});
    app.admin(Method::POST, "/admin/v1/tenants", Some(late.clone()))
        .await
        .assert_unavailable();

    let pending = app.admin(Method::GET, "/admin/v1/tenants/late", None).await;
    assert_eq!(pending.body["status"], "provisioning", "{}", pending.body);

    cluster.start_again();
    let again = silo::control::ProvisionRequest {
        slug: late["slug"].as_str().unwrap().into(),
        name: None,
        plan: None,
        server: Some("second".into()),
        domains: vec![],
        owner: None,
        ..Default::default()
    };
    let finished = silo::control::provision(
        &app.state,
        again,
        silo::control::IfExists::FinishProvisioning,
    )
    .await
    .expect("finished once its server is back");
    assert_eq!(finished.status.as_str(), "active");
    let deadline = Instant::now() + Duration::from_secs(15);
    while read(&app, "far", &far.access_token).await != 200 {
        assert!(
            Instant::now() < deadline,
            "the tenant did not recover once its server was back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read(&app, "near", &near.access_token).await, 200);
    app.shutdown().await;
}
