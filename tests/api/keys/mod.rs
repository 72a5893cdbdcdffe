//! Key rotation: a tenant's JWT key and database role password move to a new derivation
//! version, one tenant or the fleet, and the master key itself can be rolled, with no request
//! refused on the way.

mod checked_passwords;
mod cli;
mod roll;
mod rotation;
mod tokens;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use reqwest::Method;
use serde_json::Value;
use silo::secrets::Secrets;

use crate::helpers::{Reply, Session, TenantClient, TestApp};

/// The master key of every test app (`helpers::test_settings`).
pub const MASTER_KEY: &str = "test-master-key-0123456789abcdef-0123456789";

/// The id of `key` as silo records it.
pub fn key_id(key: &str) -> String {
    Secrets::from_bytes(key.as_bytes().to_vec())
        .key_id()
        .to_owned()
}

/// The `kid` in a token's header, if it has one.
pub fn kid(token: &str) -> Option<String> {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().map(str::to_owned)
}

/// `POST /admin/v1/tenants/{slug}/rotate-keys`, asserted to succeed.
pub async fn rotate(app: &TestApp, slug: &str) -> Value {
    let reply = rotate_reply(app, slug).await;
    assert_eq!(reply.status, 200, "rotating {slug}: {}", reply.body);
    reply.body
}

pub async fn rotate_reply(app: &TestApp, slug: &str) -> Reply {
    app.admin(
        Method::POST,
        &format!("/admin/v1/tenants/{slug}/rotate-keys"),
        None,
    )
    .await
}

/// Requests as a signed-in user makes them, until `stop`: `/v1/me` with the newest token,
/// then a new login for the next round. Counts the rounds in `rounds`; returns every answer
/// that was not a success.
pub async fn keep_requesting(
    tenant: &TenantClient<'_>,
    email: &str,
    password: &str,
    stop: &AtomicBool,
    rounds: &AtomicU64,
) -> Vec<String> {
    let mut token = tenant.login(email, password).await.access_token;
    let mut refused = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let me = tenant.get("/v1/me", &token).await;
        if me.status != 200 {
            refused.push(format!("/v1/me: {} {}", me.status, me.body));
        }
        let login = tenant.try_login(email, password).await;
        match login.status {
            200 => token = Session::from_reply(&login).access_token,
            _ => refused.push(format!("login: {} {}", login.status, login.body)),
        }
        rounds.fetch_add(1, Ordering::AcqRel);
    }
    refused
}

/// Waits until `rounds` has gone `more` past where it is now: the requests went on across
/// whatever happened just before. Polls; bounded by the caller's test timeout.
pub async fn rounds_pass(rounds: &AtomicU64, more: u64) {
    let from = rounds.load(Ordering::Acquire);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while rounds.load(Ordering::Acquire) < from + more {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the requests stopped going on"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
