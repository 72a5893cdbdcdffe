//! silo: a database-per-tenant router. Every tenant owns a physically separate database.
//!
//! ```text
//! request path  Host / X-Tenant / /t/<slug>
//!                 -> resolve      which slug the request names          (resolve.rs)
//!                 -> registry     slug -> tenant, moka-cached           (registry/)
//!                 -> pool         that tenant's own pool, single-flight (pool/)
//!                 -> sql          statements on its connection          (sql/)
//!                 -> identity     bearer token checked in that tenant   (identity/, http/current_user.rs)
//!                 -> handler      routes/<resource>.rs                  (http/)
//!
//! control path  CLI (cli/) / admin API (http/admin/)
//!                 -> control::provision  validate, registry row, database, migrate, seed, owner
//!                 -> control::lifecycle  suspend, resume, domains, delete
//!                 -> control::migrate    fan-out of tenant migrations, bounded concurrency
//!                 -> control::backup     backups, restores, clones (control::snapshot)
//!                 -> control::relocate   a tenant's database moved to another server
//!                 -> webhooks            lifecycle events: registry outbox -> signed POSTs
//! ```

pub mod audit;
pub mod backend;
pub mod background;
pub mod clock;
pub mod config;
pub mod database;
pub mod error;
pub mod plans;
pub mod schema;
pub mod secrets;
pub mod sql;
pub mod state;
pub mod telemetry;
pub mod tenant;
pub mod usage;

// request path
pub mod http;
pub mod identity;
pub mod limits;
pub mod pool;
pub mod registry;
pub mod resolve;

// control path
pub mod cli;
pub mod control;
pub mod webhooks;

pub use config::Settings;
pub use error::{Error, Result};
pub use state::AppState;
