//! Lifecycle webhooks: what receivers get (types, tenants, order, signatures), what a receiver
//! that fails or is down still gets, the outbox through the admin API, and bad configuration.

mod config;
mod delivery;
mod outbox;

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{distinct_accepted, Received, TestApp};

/// Each tenant's accepted events, in the order they were accepted.
fn by_tenant(got: &[Received]) -> BTreeMap<String, Vec<String>> {
    let mut tenants: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for received in distinct_accepted(got) {
        tenants
            .entry(received.slug().to_owned())
            .or_default()
            .push(received.kind().to_owned());
    }
    tenants
}

/// No request about a tenant arrived before its previous event was accepted: every attempt at
/// an event comes after every earlier event of that tenant was accepted, and after the first
/// acceptance of an event nothing earlier comes again.
#[track_caller]
fn assert_in_order_per_tenant(got: &[Received]) {
    let mut accepted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for received in got {
        let line = accepted.entry(received.slug().to_owned()).or_default();
        let id = received.delivery.clone();
        if let Some(at) = line.iter().position(|seen| *seen == id) {
            // A repeat (at least once): only of the latest accepted event.
            assert_eq!(
                at,
                line.len() - 1,
                "{} of {} came again after later events: {got:#?}",
                received.kind(),
                received.slug()
            );
            continue;
        }
        if received.accepted() {
            line.push(id);
        }
    }
}

async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let reply = app
        .admin(
            Method::GET,
            &format!("/admin/v1/webhooks/deliveries?{query}"),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"].as_array().unwrap().clone()
}

/// Polls the outbox until `query` lists `count` rows; panics after 30 s.
async fn wait_for_rows(app: &TestApp, query: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let rows = deliveries(app, query).await;
        if rows.len() == count {
            return rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "{query}: {rows:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
