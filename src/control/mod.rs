//! The control path: provision, lifecycle, migration fan-out. The CLI and the admin API are thin
//! front ends over these functions, so every rule lives once.

mod fanout;
mod lifecycle;
mod placement;
mod provision;
mod storage;

pub use fanout::{
    migrate, migration_status, FanoutOptions, FanoutReport, MigrationStatus, TenantOutcome,
};
pub use lifecycle::{add_domain, delete, find, list, remove_domain, resume, suspend};
pub use provision::{provision, IfExists, Owner, ProvisionRequest};
