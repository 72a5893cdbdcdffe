//! The OpenAPI documents: 3.1, complete against the contract, and every documented route is
//! really served (neither the unknown-route 404 nor a 405).

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{spawn_app, Reply, TestApp};

const TENANT_ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/auth/signup"),
    ("post", "/v1/auth/login"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    ("get", "/v1/me"),
    ("get", "/v1/projects"),
    ("post", "/v1/projects"),
    ("get", "/v1/projects/{id}"),
    ("patch", "/v1/projects/{id}"),
    ("delete", "/v1/projects/{id}"),
    ("get", "/v1/members"),
    ("patch", "/v1/members/{id}"),
    ("delete", "/v1/members/{id}"),
    ("post", "/v1/invitations"),
    ("post", "/v1/invitations/accept"),
    ("post", "/v1/api-tokens"),
    ("get", "/v1/api-tokens"),
    ("delete", "/v1/api-tokens/{id}"),
    ("get", "/v1/api-tokens/introspect"),
    ("get", "/v1/audit"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("post", "/admin/v1/tenants"),
    ("get", "/admin/v1/tenants"),
    ("get", "/admin/v1/tenants/{slug}"),
    ("delete", "/admin/v1/tenants/{slug}"),
    ("post", "/admin/v1/tenants/{slug}/suspend"),
    ("post", "/admin/v1/tenants/{slug}/resume"),
    ("post", "/admin/v1/tenants/{slug}/domains"),
    ("delete", "/admin/v1/tenants/{slug}/domains/{domain}"),
    ("get", "/admin/v1/tenants/{slug}/stats"),
    ("post", "/admin/v1/tenants/{slug}/support-sessions"),
    ("post", "/admin/v1/migrations"),
    ("get", "/admin/v1/migrations/status"),
    ("get", "/admin/v1/webhooks/deliveries"),
    ("get", "/admin/v1/webhooks/deliveries/{id}"),
    ("post", "/admin/v1/webhooks/deliveries/{id}/retry"),
];

fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            found.push((method.clone(), path.clone()));
        }
    }
    found
}

fn concrete(path: &str) -> String {
    path.replace("{id}", &uuid::Uuid::now_v7().to_string())
        .replace("{slug}", "acme")
        .replace("{domain}", "app.acme.test")
}

#[track_caller]
fn assert_served(reply: &Reply, method: &str, path: &str) {
    let unknown_route =
        reply.status == 404 && reply.body["error"]["message"] == "no route serves this path";
    assert!(
        !unknown_route && reply.status != 405,
        "{method} {path} is documented but not served: {} {}",
        reply.status,
        reply.body
    );
}

async fn tenant_document(app: &TestApp) -> Value {
    let reply = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    reply.json().await.unwrap()
}

#[tokio::test]
async fn the_tenant_document_is_openapi_3_1_and_lists_every_route_of_the_contract() {
    let app = spawn_app().await;
    let doc = tenant_document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let found = operations(&doc);
    for (method, path) in TENANT_ROUTES {
        assert!(
            found.contains(&(method.to_string(), path.to_string())),
            "{method} {path} missing from /openapi.json"
        );
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Every answer a route can give is listed, the shared ones (resolution, limits, tokens,
    // bodies) included.
    let codes = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}"))
            .keys()
            .cloned()
            .collect()
    };
    for (path, method, expected) in [
        (
            "/v1/projects",
            "get",
            &["200", "401", "403", "404", "422", "429", "503"][..],
        ),
        (
            "/v1/projects/{id}",
            "patch",
            &["200", "400", "401", "413", "415", "422"][..],
        ),
        (
            "/v1/auth/login",
            "post",
            &["200", "400", "401", "413", "415", "422", "429"][..],
        ),
        ("/v1/me", "get", &["200", "401", "403"][..]),
    ] {
        let listed = codes(path, method);
        for code in expected {
            assert!(
                listed.iter().any(|c| c == code),
                "{method} {path} lacks {code}: {listed:?}"
            );
        }
    }
    assert!(
        !codes("/healthz", "get").iter().any(|c| c == "429"),
        "no tenant, no tenant limits"
    );
    // A field always present, null when empty, is required (and nullable).
    let project = &doc["components"]["schemas"]["Project"];
    let required: Vec<&str> = project["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(required.contains(&"description"), "{project}");
    // Parameters say what the server enforces: `limit` is 1 to 100 on every list.
    for path in ["/v1/projects", "/v1/members", "/v1/audit"] {
        let parameters = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        let limit = parameters
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap_or_else(|| panic!("{path} documents limit"));
        assert_eq!(limit["schema"]["minimum"], 1, "{path}: {limit}");
        assert_eq!(limit["schema"]["maximum"], 100, "{path}: {limit}");
    }
}

#[tokio::test]
async fn every_documented_tenant_route_is_served() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    let doc = tenant_document(&app).await;
    for (method, path) in operations(&doc) {
        let method_value = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = app
            .tenant("acme")
            .send(
                method_value,
                &concrete(&path),
                None,
                Some(serde_json::json!({})),
            )
            .await;
        assert_served(&reply, &method, &path);
    }
}

#[tokio::test]
async fn the_admin_document_needs_the_token_and_every_documented_route_is_served() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    let without = app
        .admin_with_token(Method::GET, "/admin/v1/openapi.json", None, None)
        .await;
    without.assert_error(401, "unauthorized");
    let doc = app.admin(Method::GET, "/admin/v1/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                operation["responses"]["401"].is_object(),
                "{method} {path} does not list the admin token's 401"
            );
        }
    }
    let domains = &doc.body["paths"]["/admin/v1/tenants/{slug}/domains"]["post"]["responses"];
    assert!(domains["404"].is_object(), "{domains}");
    // A body every field of which is optional may be left out, and says so.
    let start = &doc.body["paths"]["/admin/v1/migrations"]["post"]["requestBody"];
    assert!(start["content"]["application/json"].is_object(), "{start}");
    assert_ne!(start["required"], true, "{start}");
    let found = operations(&doc.body);
    for (method, path) in ADMIN_ROUTES {
        assert!(
            found.contains(&(method.to_string(), path.to_string())),
            "{method} {path} missing from the admin document"
        );
    }
    for (method, path) in found {
        // DELETE of the tenant carries no `?confirm`, so it is refused with 400 and deletes nothing.
        let method_value = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = app
            .admin(method_value, &concrete(&path), Some(serde_json::json!({})))
            .await;
        assert_served(&reply, &method, &path);
    }
}
