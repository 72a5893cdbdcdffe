//! Provisioning through the admin API: what a new tenant looks like, and every refusal.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use super::{create, slugs};
use crate::helpers::{list_dir, spawn_app};

#[tokio::test]
async fn creating_a_tenant_returns_it_whole() {
    let app = spawn_app().await;
    let reply = create(
        &app,
        json!({"slug": "acme", "name": "Acme Inc.", "plan": "pro", "domains": ["Acme.COM"]}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let tenant = &reply.body;
    let keys: HashSet<&str> = tenant
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected = [
        "id",
        "slug",
        "name",
        "plan",
        "status",
        "server",
        "database",
        "schema_version",
        "domains",
        "created_at",
    ];
    assert_eq!(keys, HashSet::from(expected));
    let id = tenant["id"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 7);
    assert_eq!(id, id.to_lowercase());
    assert_eq!(tenant["slug"], "acme");
    assert_eq!(tenant["name"], "Acme Inc.");
    assert_eq!(tenant["plan"], "pro");
    assert_eq!(tenant["status"], "active");
    assert_eq!(tenant["server"], "local");
    assert_eq!(tenant["domains"], json!(["acme.com"]));
    assert!(tenant["schema_version"].as_i64().unwrap() > 0, "{tenant}");
    let created_at = tenant["created_at"].as_str().unwrap();
    let at = OffsetDateTime::parse(created_at, &Rfc3339).expect("RFC 3339");
    assert!(at.offset().is_utc());
    assert!(app.database(tenant).exists().await);

    let shown = app.admin(Method::GET, "/admin/v1/tenants/acme", None).await;
    assert_eq!(shown.status, 200);
    assert_eq!(&shown.body, tenant);

    // Defaults: the slug as name, the free plan.
    let plain = create(&app, json!({"slug": "globex"})).await;
    assert_eq!(plain.body["name"], "globex");
    assert_eq!(plain.body["plan"], "free");
    assert_eq!(plain.body["domains"], json!([]));
}

#[tokio::test]
async fn a_taken_slug_or_domain_is_a_conflict_whatever_the_status() {
    let app = spawn_app().await;
    assert_eq!(
        create(&app, json!({"slug": "acme", "domains": ["acme.com"]}))
            .await
            .status,
        201
    );
    create(&app, json!({"slug": "acme"}))
        .await
        .assert_error(409, "conflict");
    app.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    create(&app, json!({"slug": "acme"}))
        .await
        .assert_error(409, "conflict");
    create(&app, json!({"slug": "globex", "domains": ["ACME.com."]}))
        .await
        .assert_error(409, "conflict");
    assert_eq!(
        slugs(&app, "").await,
        vec!["acme"],
        "the refused globex left nothing behind"
    );

    app.create_tenant("initech").await;
    app.admin(
        Method::POST,
        "/admin/v1/tenants/initech/domains",
        Some(json!({"domain": "acme.com"})),
    )
    .await
    .assert_error(409, "conflict");
}

#[tokio::test]
async fn invalid_requests_are_refused_before_anything_is_created() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    let files_before = list_dir(&app.tenants_dir());
    let long = "a".repeat(64);
    let cases = [
        json!({"slug": "Bad Slug"}),
        json!({"slug": "ab"}),
        json!({"slug": long}),
        json!({"slug": "../etc"}),
        json!({"slug": "ends-"}),
        json!({"slug": " padded "}),
        json!({"slug": "globex", "plan": "platinum"}),
        json!({"slug": "globex", "plan": "../free"}),
        json!({"slug": "globex", "server": "mars"}),
        json!({"slug": "globex", "domains": ["not a domain"]}),
        json!({"slug": "globex", "domains": ["globex.localhost"]}),
        json!({"slug": "globex", "domains": ["10.0.0.1"]}),
        json!({"slug": "globex", "name": ""}),
        json!({"slug": "globex", "name": "n".repeat(201)}),
        json!({"slug": "globex", "owner_email": "nope", "owner_password": "password1"}),
        json!({"slug": "globex", "owner_email": "a@x.com", "owner_password": "short"}),
        json!({"slug": "globex", "owner_email": "a@x.com"}),
        json!({"name": "no slug"}),
    ];
    for body in cases {
        create(&app, body.clone())
            .await
            .assert_error(422, "validation_failed");
    }
    assert_eq!(slugs(&app, "").await, vec!["acme"]);
    assert_eq!(list_dir(&app.tenants_dir()), files_before, "no new files");
    for domain in ["localhost", "x.acme.localhost", "a..b", "10.0.0.1"] {
        app.admin(
            Method::POST,
            "/admin/v1/tenants/acme/domains",
            Some(json!({ "domain": domain })),
        )
        .await
        .assert_error(422, "validation_failed");
    }
    let acme = app.admin(Method::GET, "/admin/v1/tenants/acme", None).await;
    assert_eq!(acme.body["domains"], json!([]));
}

#[tokio::test]
async fn a_tenant_whose_provisioning_failed_stays_provisioning_and_unavailable() {
    if crate::helpers::sqlite_files_only() {
        return;
    }
    let app = spawn_app().await;
    // A regular file where the tenants directory should be: no database can be created.
    std::fs::write(app.tenants_dir(), b"in the way").unwrap();
    let failed = create(&app, json!({"slug": "acme"})).await;
    failed.assert_error(500, "internal");
    let text = failed.body.to_string();
    assert!(
        !text.contains(app.dir.path().to_str().unwrap()) && !text.contains("tenants"),
        "a 500 reveals no paths: {text}"
    );
    let shown = app.admin(Method::GET, "/admin/v1/tenants/acme", None).await;
    assert_eq!(shown.body["status"], "provisioning", "{}", shown.body);
    assert!(shown.body["last_error"].is_string(), "{}", shown.body);

    let reply = app
        .tenant("acme")
        .send(Method::GET, "/v1/projects", None, None)
        .await;
    reply.assert_unavailable();
    // The admin API does not finish a half-made tenant: the slug is taken.
    std::fs::remove_file(app.tenants_dir()).unwrap();
    create(&app, json!({"slug": "acme"}))
        .await
        .assert_error(409, "conflict");
}

#[tokio::test]
async fn a_provisioning_that_fails_part_way_leaves_no_database_file() {
    if crate::helpers::sqlite_files_only() {
        return;
    }
    let app = spawn_app().await;
    // The database is created and migrated, then the plan's seed fails.
    create(&app, json!({"slug": "broke", "plan": "broken"}))
        .await
        .assert_error(500, "internal");
    let shown = app
        .admin(Method::GET, "/admin/v1/tenants/broke", None)
        .await;
    assert_eq!(shown.body["status"], "provisioning", "{}", shown.body);
    let id = shown.body["id"].as_str().unwrap().to_owned();
    let left: Vec<String> = list_dir(&app.tenants_dir())
        .into_iter()
        .filter(|name| name.starts_with(&id))
        .collect();
    assert!(left.is_empty(), "a half-built database stayed: {left:?}");
    // Other tenants are provisioned as usual beside it.
    create(&app, json!({"slug": "fine"})).await;
    let fine = app.admin(Method::GET, "/admin/v1/tenants/fine", None).await;
    assert!(app.database_file(&fine.body).is_file());
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_provisioning_still_gets_a_whole_tenant() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    // The whole request is sent, then the connection is closed at once, without waiting for
    // any answer: however busy the machine, silo has the request and the client is gone.
    let body =
        json!({"slug": "hasty", "owner_email": "o@hasty.test", "owner_password": "owner-password"})
            .to_string();
    let request = format!(
        "POST /admin/v1/tenants HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        crate::helpers::ADMIN_TOKEN,
        body.len()
    );
    let mut hasty = tokio::net::TcpStream::connect(app.admin_addr)
        .await
        .unwrap();
    hasty.write_all(request.as_bytes()).await.unwrap();
    hasty.shutdown().await.unwrap();
    drop(hasty);
    let mut status = Value::Null;
    for _ in 0..200 {
        status = app
            .admin(Method::GET, "/admin/v1/tenants/hasty", None)
            .await
            .body["status"]
            .clone();
        if status == "active" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "active");
    app.tenant("hasty")
        .login("o@hasty.test", "owner-password")
        .await;
}
