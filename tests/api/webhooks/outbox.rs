//! The outbox through the admin API (given-up deliveries and their retry), migration outcomes,
//! and two routers sharing one registry's outbox.

use reqwest::Method;

use super::{assert_in_order_per_tenant, by_tenant, wait_for_rows};
use std::path::PathBuf;

use crate::helpers::{spawn_app_with, webhooks_to, Receiver, TestApp};

#[tokio::test]
async fn a_delivery_given_up_is_shown_failed_and_can_be_sent_again() {
    // Refuses the first three attempts; two attempts are allowed, so the first event fails.
    let receiver = Receiver::failing_first(3).await;
    let url = receiver.url();
    let app = spawn_app_with(move |settings| {
        webhooks_to(settings, &[url]);
        settings.webhooks.max_attempts = 2;
    })
    .await;
    app.create_tenant("acme").await;
    let failed = wait_for_rows(&app, "status=failed", 1).await;
    assert_eq!(failed[0]["type"], "tenant.created");
    assert_eq!(failed[0]["attempts"], 2);
    assert_eq!(failed[0]["tenant"]["slug"], "acme");
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains("500"),
        "{failed:?}"
    );
    assert!(failed[0]["delivered_at"].is_null());

    // A given-up event holds nothing up: the next one goes out (after one more refusal).
    app.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    let got = receiver.wait_for_events(1).await;
    assert_eq!(by_tenant(&got)["acme"], ["tenant.suspended"]);

    let id = failed[0]["id"].as_str().unwrap();
    let retried = app
        .admin(
            Method::POST,
            &format!("/admin/v1/webhooks/deliveries/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.body["attempts"], 0);
    let got = receiver.wait_for_events(2).await;
    assert_eq!(
        by_tenant(&got)["acme"],
        ["tenant.suspended", "tenant.created"]
    );
    let delivered = wait_for_rows(&app, "status=delivered", 2).await;
    assert!(delivered.iter().all(|d| d["delivered_at"].is_string()));

    let again = app
        .admin(
            Method::POST,
            &format!("/admin/v1/webhooks/deliveries/{id}/retry"),
            None,
        )
        .await;
    again.assert_error(409, "conflict");
    let shown = app
        .admin(
            Method::GET,
            &format!("/admin/v1/webhooks/deliveries/{id}"),
            None,
        )
        .await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["status"], "delivered");
    let unknown = uuid::Uuid::now_v7();
    for path in [
        format!("/admin/v1/webhooks/deliveries/{unknown}"),
        "/admin/v1/webhooks/deliveries/not-an-id".to_owned(),
    ] {
        app.admin(Method::GET, &path, None)
            .await
            .assert_error(404, "not_found");
    }
    for query in ["status=stuck", "tenant=Not_A_Slug", "limit=0", "cursor=x"] {
        app.admin(
            Method::GET,
            &format!("/admin/v1/webhooks/deliveries?{query}"),
            None,
        )
        .await
        .assert_error(422, "validation_failed");
    }
    // Pages: oldest first, the cursor goes on where the last page stopped.
    let first = app
        .admin(Method::GET, "/admin/v1/webhooks/deliveries?limit=1", None)
        .await;
    assert_eq!(first.body["data"][0]["type"], "tenant.created");
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .admin(
            Method::GET,
            &format!("/admin/v1/webhooks/deliveries?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(second.body["data"][0]["type"], "tenant.suspended");
    assert!(second.body["next_cursor"].is_null());
}

/// A tenant schema with one migration more than the built-in one.
fn schema_with_one_more(dir: &std::path::Path, table: &str) -> std::path::PathBuf {
    let folder = dir.join("migrations");
    std::fs::create_dir_all(&folder).unwrap();
    let schema = silo::schema::TenantSchema::built_in();
    for m in schema.migrations() {
        let name = format!("{:04}_{}.sql", m.version, m.description);
        std::fs::write(folder.join(name), m.sql.as_ref()).unwrap();
    }
    std::fs::write(
        folder.join(format!("{:04}_{table}.sql", schema.target_version() + 1)),
        format!("CREATE TABLE {table} (id TEXT);\n"),
    )
    .unwrap();
    folder
}

/// A second router on `one`'s registry and tenant databases, sending to `url`, with the
/// tenant schema in `folder`.
async fn beside(one: &TestApp, url: &str, folder: PathBuf, on_open: bool) -> TestApp {
    let (url, registry, data, tenants) = (
        url.to_owned(),
        one.state.settings.registry_url(),
        one.state.settings.data_dir.clone(),
        one.state.settings.servers["local"].url.clone(),
    );
    spawn_app_with(move |settings| {
        webhooks_to(settings, &[url]);
        settings.registry.url = registry;
        settings.data_dir = data;
        settings.servers.get_mut("local").unwrap().url = tenants;
        settings.migrations.dir = folder;
        settings.migrations.on_open = on_open;
    })
    .await
}

#[tokio::test]
async fn a_migration_on_open_is_announced_once() {
    let receiver = Receiver::start().await;
    let url = receiver.url();
    let first_url = url.clone();
    let one = spawn_app_with(move |settings| webhooks_to(settings, &[first_url])).await;
    let acme = one.create_tenant("acme").await;
    receiver.wait_for_events(1).await;
    let schema_dir = tempfile::tempdir().unwrap();
    let table = format!("marker_{}", uuid::Uuid::now_v7().simple());
    let folder = schema_with_one_more(schema_dir.path(), &table);
    let newer = beside(&one, &url, folder.clone(), true).await;
    let again = beside(&one, &url, folder, true).await;
    // The first request to each newer router opens acme's pool there, behind its schema.
    for router in [&newer, &again] {
        let reply = router
            .tenant("acme")
            .try_login("nobody@acme.test", "not-a-password")
            .await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let got = receiver.wait_for_events(2).await;
    assert_eq!(
        by_tenant(&got)["acme"],
        ["tenant.created", "tenant.migrated"]
    );
    let migrated = &got.last().unwrap().json;
    let from = acme["schema_version"].as_i64().unwrap();
    assert_eq!(migrated["data"]["from_version"], from);
    assert_eq!(migrated["data"]["to_version"], from + 1);
    assert_eq!(migrated["data"]["via"], "open");
    // Only the router that moved the version announced it.
    let rows = wait_for_rows(&one, "status=delivered&tenant=acme", 2).await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
}

#[tokio::test]
async fn a_fanout_announces_each_tenants_outcome_and_two_routers_share_the_outbox() {
    let receiver = Receiver::start().await;
    let url = receiver.url();
    let first_url = url.clone();
    let one = spawn_app_with(move |settings| webhooks_to(settings, &[first_url])).await;
    let acme = one.create_tenant("acme").await;
    let globex = one.create_tenant("globex").await;
    receiver.wait_for_events(2).await;

    // A second router on the same registry and tenant databases, with a newer tenant schema.
    // globex already has the new migration's table, so its migration fails.
    let table = format!("marker_{}", uuid::Uuid::now_v7().simple());
    one.database(&globex)
        .execute(&format!("CREATE TABLE {table} (id TEXT)"))
        .await;
    let schema_dir = tempfile::tempdir().unwrap();
    let folder = schema_with_one_more(schema_dir.path(), &table);
    let other = beside(&one, &url, folder, false).await;
    let started = other
        .admin(Method::POST, "/admin/v1/migrations", None)
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let got = receiver.wait_for_events(4).await;
    let tenants = by_tenant(&got);
    assert_eq!(tenants["acme"], ["tenant.created", "tenant.migrated"]);
    assert_eq!(
        tenants["globex"],
        ["tenant.created", "tenant.migration_failed"]
    );
    let outcome = |slug: &str| {
        got.iter()
            .rev()
            .find(|r| r.slug() == slug)
            .unwrap()
            .json
            .clone()
    };
    let migrated = outcome("acme");
    let from = acme["schema_version"].as_i64().unwrap();
    assert_eq!(migrated["data"]["from_version"], from);
    assert_eq!(migrated["data"]["to_version"], from + 1);
    let failed = outcome("globex");
    assert_eq!(failed["data"]["version"], from);
    assert!(
        failed["data"]["error"].as_str().unwrap().contains(&table),
        "{failed}"
    );

    // Events recorded through either router are delivered by one of them, each once, in order.
    for step in ["suspend", "resume"] {
        let through = if step == "suspend" { &one } else { &other };
        let reply = through
            .admin(
                Method::POST,
                &format!("/admin/v1/tenants/acme/{step}"),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let got = receiver.wait_for_events(6).await;
    assert_in_order_per_tenant(&got);
    assert_eq!(
        by_tenant(&got)["acme"],
        [
            "tenant.created",
            "tenant.migrated",
            "tenant.suspended",
            "tenant.resumed"
        ]
    );
    assert_eq!(got.len(), 6, "each event once: {got:#?}");
    other.shutdown().await;
    one.shutdown().await;
}
