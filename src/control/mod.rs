//! The control path: provision, lifecycle, migration fan-out. The CLI and the admin API are thin
//! front ends over these functions, so every rule lives once.

mod backup;
mod batch;
mod export;
mod fanout;
mod keys;
mod lifecycle;
mod migrate;
mod placement;
mod provision;
mod relocate;
mod runs;
mod snapshot;
mod stats;
mod support;

pub use backup::{backup, clone_tenant, restore, Backup, FORMAT as BACKUP_FORMAT};
pub use export::{export, FORMAT as EXPORT_FORMAT};
pub use fanout::{
    execute, find_run, migrate, migration_status, plan, start_migration, FanoutOptions,
    FanoutReport, MigrationStatus, PlannedRun, TenantOutcome,
};
pub use keys::{
    key_status, rotate_fleet, rotate_keys, Credentials, FleetReport, KeyStatus, KeysRotated,
    Outcome as RotationOutcome, DEFAULT_CONCURRENCY as DEFAULT_ROTATION_CONCURRENCY,
    MAX_CONCURRENCY as MAX_ROTATION_CONCURRENCY,
};
pub use lifecycle::{add_domain, delete, find, list, list_all, remove_domain, resume, suspend};
pub use migrate::{migrate_file, migrate_tenant};
pub use provision::{provision, Contents, IfExists, Owner, ProvisionRequest};
pub use relocate::move_tenant;
pub use runs::runs;
pub use snapshot::{Column, Kind as ColumnKind, Table, FENCE_MESSAGE};
pub use stats::{measure_all, stats, usage, TenantStats};
pub use support::{support_session, SupportRequest, SupportSession, MAX_TTL_SECS, REASON_MAX};
