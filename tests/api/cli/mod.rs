//! The `silo` binary: tenant commands, migrate, config handling and exit codes (0 success,
//! 1 the operation failed, 2 bad arguments or config).

mod config;
mod migrate;
mod tenant;

use crate::helpers::Cli;

/// Database files (not templates, not leftovers) in the tenants directory.
fn databases(cli: &Cli) -> Vec<String> {
    cli.tenant_files()
        .into_iter()
        .filter(|name| !name.starts_with('.'))
        .collect()
}
