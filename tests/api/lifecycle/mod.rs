//! The admin API: provision, list, show, suspend, resume, domains, delete, and the token guarding it.

mod backup;
mod export;
mod moves;
mod operations;
mod provisioning;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Reply, TestApp};

async fn create(app: &TestApp, body: Value) -> Reply {
    app.admin(Method::POST, "/admin/v1/tenants", Some(body))
        .await
}

async fn slugs(app: &TestApp, query: &str) -> Vec<String> {
    let reply = app
        .admin(Method::GET, &format!("/admin/v1/tenants{query}"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap().to_owned())
        .collect()
}
