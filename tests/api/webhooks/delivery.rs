//! What receivers get: every lifecycle event, about the right tenant, signed, in order per
//! tenant, also from a receiver that fails for a while or is down when the events happen.

use reqwest::Method;
use serde_json::json;

use super::{assert_in_order_per_tenant, by_tenant, wait_for_rows};
use crate::helpers::{
    free_addr, spawn_app_with, url_at, webhooks_to, Receiver, TestApp, WEBHOOK_SECRET,
};

async fn app_sending_to(urls: &[String]) -> TestApp {
    let urls = urls.to_vec();
    spawn_app_with(move |settings| webhooks_to(settings, &urls)).await
}

async fn admin_ok(app: &TestApp, method: Method, path: &str) {
    let reply = app.admin(method, path, None).await;
    assert!(
        (200..300).contains(&reply.status),
        "{path}: {} {}",
        reply.status,
        reply.body
    );
}

#[tokio::test]
async fn lifecycle_events_arrive_signed_in_order_and_about_their_own_tenant() {
    let receiver = Receiver::start().await;
    let app = app_sending_to(&[receiver.url()]).await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    admin_ok(&app, Method::POST, "/admin/v1/tenants/acme/suspend").await;
    admin_ok(&app, Method::POST, "/admin/v1/tenants/acme/resume").await;
    // Already active: no change, no event.
    admin_ok(&app, Method::POST, "/admin/v1/tenants/acme/resume").await;
    admin_ok(&app, Method::DELETE, "/admin/v1/tenants/acme?confirm=acme").await;

    let got = receiver.wait_for_events(5).await;
    let tenants = by_tenant(&got);
    assert_eq!(
        tenants["acme"],
        [
            "tenant.created",
            "tenant.suspended",
            "tenant.resumed",
            "tenant.deleted"
        ]
    );
    assert_eq!(tenants["globex"], ["tenant.created"]);
    assert_eq!(tenants.len(), 2, "{tenants:?}");
    assert_in_order_per_tenant(&got);
    for received in &got {
        assert!(received.signed_with(WEBHOOK_SECRET), "{received:?}");
        assert!(!received.signed_with("another-secret-0123456789"));
        assert_eq!(received.content_type, "application/json");
        assert_eq!(received.event, received.kind());
        assert_eq!(received.delivery, received.json["id"].as_str().unwrap());
        let own = if received.slug() == "acme" {
            &acme
        } else {
            &globex
        };
        assert_eq!(received.json["tenant"]["id"], own["id"], "{received:?}");
        let at = received.json["occurred_at"].as_str().unwrap();
        assert!(at.ends_with('Z'), "{at}");
        assert!(received.json["data"].is_object(), "{received:?}");
    }
    let find = |slug: &str, kind: &str| {
        got.iter()
            .find(|r| r.slug() == slug && r.kind() == kind)
            .unwrap()
            .json
            .clone()
    };
    let created = find("globex", "tenant.created");
    assert_eq!(created["data"]["plan"], globex["plan"]);
    assert_eq!(created["data"]["server"], globex["server"]);
    assert_eq!(created["data"]["schema_version"], globex["schema_version"]);
    let suspended = find("acme", "tenant.suspended");
    assert_eq!(
        suspended["data"],
        json!({"from": "active", "to": "suspended"})
    );
    let resumed = find("acme", "tenant.resumed");
    assert_eq!(
        resumed["data"],
        json!({"from": "suspended", "to": "active"})
    );
    // One delivery per event here: one receiver, one router, no failure.
    assert_eq!(got.len(), 5, "{got:#?}");
}

#[tokio::test]
async fn a_receiver_that_fails_for_a_while_gets_every_event_in_order() {
    let receiver = Receiver::failing_first(7).await;
    let healthy = Receiver::start().await;
    let app = app_sending_to(&[receiver.url(), healthy.url()]).await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    for step in ["suspend", "resume", "suspend"] {
        admin_ok(
            &app,
            Method::POST,
            &format!("/admin/v1/tenants/acme/{step}"),
        )
        .await;
    }
    admin_ok(&app, Method::POST, "/admin/v1/tenants/globex/suspend").await;

    let expected_acme = [
        "tenant.created",
        "tenant.suspended",
        "tenant.resumed",
        "tenant.suspended",
    ];
    for target in [&receiver, &healthy] {
        let got = target.wait_for_events(6).await;
        assert_in_order_per_tenant(&got);
        let tenants = by_tenant(&got);
        assert_eq!(tenants["acme"], expected_acme, "{got:#?}");
        assert_eq!(tenants["globex"], ["tenant.created", "tenant.suspended"]);
        assert!(got.iter().all(|r| r.signed_with(WEBHOOK_SECRET)));
    }
    let failing = receiver.received();
    assert_eq!(failing.iter().filter(|r| !r.accepted()).count(), 7);
    // The healthy receiver was not held up by the failing one: it got each event once.
    assert_eq!(healthy.received().len(), 6);

    // The outbox counted every attempt, and says each was delivered in the end (once the
    // worker has recorded the last answer).
    let rows = wait_for_rows(&app, "status=delivered&limit=100", 12).await;
    let attempts_to = |url: &str| -> i64 {
        rows.iter()
            .filter(|r| r["url"] == url)
            .map(|r| r["attempts"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(attempts_to(&receiver.url()), failing.len() as i64);
    assert_eq!(attempts_to(&healthy.url()), 6);
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_everything_once_it_is_up() {
    let addr = free_addr();
    let app = app_sending_to(&[url_at(addr)]).await;
    app.create_tenant("acme").await;
    admin_ok(&app, Method::POST, "/admin/v1/tenants/acme/suspend").await;
    app.create_tenant("globex").await;

    // The outbox shows the first event retried, failing to connect, and the rest waiting.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let pending = app
            .admin(
                Method::GET,
                "/admin/v1/webhooks/deliveries?status=pending&tenant=acme",
                None,
            )
            .await;
        assert_eq!(pending.status, 200, "{}", pending.body);
        let rows = pending.body["data"].as_array().unwrap().clone();
        if rows.len() == 2 && rows[0]["attempts"].as_i64().unwrap() >= 3 {
            assert_eq!(rows[0]["type"], "tenant.created");
            let error = rows[0]["last_error"].as_str().unwrap();
            assert!(error.contains("connect"), "{error}");
            assert_eq!(rows[1]["type"], "tenant.suspended");
            assert_eq!(rows[1]["attempts"], 0, "a later event waits its turn");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retries seen: {}",
            pending.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let receiver = Receiver::on(addr, 0).await;
    let got = receiver.wait_for_events(3).await;
    assert_in_order_per_tenant(&got);
    let tenants = by_tenant(&got);
    assert_eq!(tenants["acme"], ["tenant.created", "tenant.suspended"]);
    assert_eq!(tenants["globex"], ["tenant.created"]);
}

#[tokio::test]
async fn a_router_without_receivers_records_nothing() {
    let app = spawn_app_with(|_| {}).await;
    app.create_tenant("acme").await;
    admin_ok(&app, Method::POST, "/admin/v1/tenants/acme/suspend").await;
    let listed = app
        .admin(Method::GET, "/admin/v1/webhooks/deliveries", None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body, json!({"data": [], "next_cursor": null}));
}

#[tokio::test]
async fn a_receiver_that_never_answers_holds_up_no_other() {
    // Takes connections and the requests on them, and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = url_at(silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let healthy = Receiver::start().await;
    let urls = [silent_url, healthy.url()];
    // Far longer than the test waits: the healthy receiver is served while the silent one
    // still holds its first attempt.
    let app = spawn_app_with(move |settings| {
        webhooks_to(settings, &urls);
        settings.webhooks.timeout_ms = 600_000;
    })
    .await;
    for slug in ["acme", "globex", "initech"] {
        app.create_tenant(slug).await;
    }
    admin_ok(&app, Method::POST, "/admin/v1/tenants/acme/suspend").await;
    let got = healthy.wait_for_events(4).await;
    assert_in_order_per_tenant(&got);
    assert_eq!(
        by_tenant(&got)["acme"],
        ["tenant.created", "tenant.suspended"]
    );
    held.abort();
}

#[tokio::test]
async fn a_move_and_a_clone_are_announced_about_their_own_tenants() {
    let receiver = Receiver::start().await;
    let files = tempfile::tempdir().unwrap();
    let urls = [receiver.url()];
    let dir = files.path().to_owned();
    let app = spawn_app_with(move |settings| {
        webhooks_to(settings, &urls);
        settings.servers.insert(
            "files".into(),
            silo::config::ServerSettings {
                url: format!("sqlite://{}", dir.display()),
                max_connections: 60,
            },
        );
    })
    .await;
    let made = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({ "slug": "acme", "server": "local" })),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let moved = app
        .admin(
            Method::POST,
            "/admin/v1/tenants/acme/move",
            Some(json!({ "to": "files" })),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let cloned = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({ "slug": "acme-copy", "from": "acme" })),
        )
        .await;
    assert_eq!(cloned.status, 201, "{}", cloned.body);

    let got = receiver.wait_for_events(3).await;
    let tenants = by_tenant(&got);
    assert_eq!(tenants["acme"], ["tenant.created", "tenant.moved"]);
    assert_eq!(tenants["acme-copy"], ["tenant.created"]);
    let event = got.iter().find(|r| r.kind() == "tenant.moved").unwrap();
    assert_eq!(event.json["tenant"]["id"], made.body["id"]);
    assert_eq!(
        event.json["data"],
        json!({
            "from": { "server": "local", "database": made.body["database"] },
            "to": { "server": "files", "database": moved.body["database"] },
        })
    );
    assert!(event.signed_with(WEBHOOK_SECRET));
    let copy = got.iter().find(|r| r.slug() == "acme-copy").unwrap();
    assert_eq!(copy.json["tenant"]["id"], cloned.body["id"]);
}
