//! Test helpers: spawn a silo, provision tenants, talk to them as a client would.

mod app;
mod client;
mod raw;

pub use app::{spawn_app, spawn_app_with, TestApp};
pub use client::{Reply, Session, TenantClient};
pub use raw::raw_request;
