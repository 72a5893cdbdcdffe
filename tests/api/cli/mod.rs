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

/// A silo serving the CLI's data directory, its tenant server and its master key (the
/// development key the CLI keeps there), so either can use what the other made.
async fn serve(cli: &Cli, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let (data_dir, registry) = (cli.data_dir(), cli.registry_url());
    let server = cli.server_url();
    spawn_app_with(move |s| {
        s.data_dir = data_dir;
        s.registry.url = registry;
        s.servers.get_mut("local").unwrap().url = server;
        s.secrets.master_key = "".into();
        adjust(s);
    })
    .await
}
