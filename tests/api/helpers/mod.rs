//! Test helpers: spawn a silo, provision tenants, talk to them as a client would, run the binary.

mod app;
mod cli;
mod client;
mod cluster;
mod postgres;
mod raw;
mod receiver;
mod team;
mod tenant_database;

pub use app::{list_dir, spawn_app, spawn_app_with, TestApp, ADMIN_TOKEN};
pub use cli::{templates_dir, Cli, Output};
pub use client::{Reply, Session, TenantClient};
pub use cluster::Cluster;
pub use postgres::{
    fresh_database, sqlite_files_only, tenant_server_url, test_registry, test_registry_blocking,
    TestDatabase,
};
pub use raw::{raw_request, KeepAlive};
pub use receiver::{
    distinct_accepted, free_addr, url_at, webhooks_to, Received, Receiver, WEBHOOK_SECRET,
};
pub use team::{invite_and_accept, team, Team};
pub use tenant_database::{handles_on, TenantDatabase};
