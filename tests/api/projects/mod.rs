//! Projects: create, read, update, delete, newest first with cursor pages, and who may do what.

mod access;
mod crud;

use serde_json::Value;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::helpers::{spawn_app, Session, TestApp};

/// Tenant `acme` with its owner and two members who signed up.
async fn team() -> (TestApp, Session, Session, Session) {
    let app = spawn_app().await;
    let owner = app
        .create_tenant_with_owner("acme", "owner@acme.com", "owner-password")
        .await;
    let ann = app
        .tenant("acme")
        .signup("ann@acme.com", "ann-password")
        .await;
    let bob = app
        .tenant("acme")
        .signup("bob@acme.com", "bob-password")
        .await;
    (app, owner, ann, bob)
}

#[track_caller]
fn assert_utc_timestamp(value: &Value) -> OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    let at = OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert!(at.offset().is_utc(), "{text} is not in UTC");
    at
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {page}"))
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}
