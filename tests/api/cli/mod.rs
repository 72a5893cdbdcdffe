//! The `silo` binary: tenant commands, migrate, config handling and exit codes (0 success,
//! 1 the operation failed, 2 bad arguments or config).

mod config;
mod migrate;
mod rollout;
mod tenant;

use silo::Settings;

use crate::helpers::{spawn_app_with, Cli, TestApp};

/// Database files (not templates, not leftovers) in the tenants directory.
fn databases(cli: &Cli) -> Vec<String> {
    cli.tenant_files()
        .into_iter()
        .filter(|name| !name.starts_with('.'))
        .collect()
}

/// A silo serving the CLI's data directory.
async fn serve(cli: &Cli, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let (data_dir, tenants_dir, registry) = (cli.data_dir(), cli.tenants_dir(), cli.registry_url());
    spawn_app_with(move |s| {
        s.data_dir = data_dir;
        s.registry.url = registry;
        s.servers.get_mut("local").unwrap().url = format!("sqlite://{}", tenants_dir.display());
        adjust(s);
    })
    .await
}
