//! The command line: clap types here, one file per subcommand. Exit codes: 0 success,
//! 1 the operation failed, 2 bad arguments or config.

mod keys;
mod migrate;
mod serve;
mod tenant;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{config::Settings, error::Error, telemetry};

/// silo: a database-per-tenant router for multi-tenant SaaS backends.
#[derive(Debug, Parser)]
#[command(name = "silo", version)]
pub struct Cli {
    /// Config file (default: ./config.toml when present).
    #[arg(long, global = true, env = "SILO_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the tenant API (http.listen) and, when admin.token is set, the admin API.
    Serve,
    /// Create, inspect, suspend, resume and delete tenants.
    Tenant {
        #[command(subcommand)]
        command: tenant::TenantCommand,
    },
    /// Roll pending tenant migrations out to every tenant database (or a target group first).
    Migrate(migrate::MigrateArgs),
    /// Rotate every tenant's keys onto the current master key (a master-key roll), or see
    /// where the fleet stands.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
}

/// How a command ended.
pub enum Outcome {
    Success,
    Failed,
}

/// How often (in tasks) a runtime worker looks at its global queue, where tokio puts tasks
/// woken from outside the runtime: a request whose password hash finished on the blocking
/// pool, or whose registry query came back from its sqlx connection thread. tokio's default is
/// every 61 tasks, so under one tenant's flood another tenant's request waited behind up to 61
/// flood tasks at each hand-off; with 2 it is resumed before more new network work is taken.
/// Measured in BENCHMARKS.md (noisy neighbour) when every tenant query answered from a thread
/// of its own (runs 8–20); tenant statements now run on the worker itself.
const GLOBAL_QUEUE_INTERVAL: u32 = 2;

/// What the binary runs.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("silo: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .global_queue_interval(GLOBAL_QUEUE_INTERVAL)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("silo: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::run(settings).await,
            Command::Tenant { command } => tenant::run(settings, command).await,
            Command::Migrate(args) => migrate::run(settings, args).await,
            Command::Keys { command } => keys::run(settings, command).await,
        }
    });
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(error) => {
            eprintln!("silo: {}", describe(&error));
            ExitCode::from(if error.is_bad_input() { 2 } else { 1 })
        }
    }
}

/// One line for a person, with the failing fields or the whole cause chain.
fn describe(error: &Error) -> String {
    match error {
        Error::Validation { message, .. } => message.clone(),
        other => other.detail(),
    }
}
