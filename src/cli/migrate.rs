//! `silo migrate` and `silo migrate status`: roll tenant migrations out, canary first if you
//! like (`--tenant a --tenant b`), then everyone; see where the fleet stands.

use std::io::IsTerminal;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::Outcome;
use crate::{
    config::Settings,
    control::{self, FanoutOptions, TenantOutcome},
    error::Result,
    state::AppState,
};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MigrateArgs {
    #[command(subcommand)]
    command: Option<MigrateCommand>,
    /// Tenant databases migrated at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Migrate only this tenant (a canary target group); repeat for several.
    #[arg(long = "tenant", value_name = "SLUG")]
    tenants: Vec<String>,
    /// Show what would be migrated, change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Target version, tenants per schema version, and failed tenants.
    Status,
}

pub async fn run(settings: Settings, args: MigrateArgs) -> Result<Outcome> {
    let state = AppState::build(settings).await?;
    let result = execute(&state, args).await;
    state.close().await;
    result
}

async fn execute(state: &AppState, args: MigrateArgs) -> Result<Outcome> {
    if let Some(MigrateCommand::Status) = args.command {
        let status = control::migration_status(state).await?;
        println!(
            "{}",
            serde_json::to_string_pretty(&status).unwrap_or_default()
        );
        return Ok(Outcome::Success);
    }
    let options = FanoutOptions {
        concurrency: usize::from(args.concurrency),
        tenants: args.tenants,
        dry_run: args.dry_run,
    };
    let run = control::plan(state, &options).await?;
    // A progress bar on a terminal; plain lines, one per tenant that needed work, otherwise.
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(run.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} tenants {elapsed_precise} {msg}")
                .expect("a valid template"),
        );
        bar
    });
    let report = control::execute(state, run, |outcome| match &bar {
        Some(bar) => {
            if matches!(outcome, TenantOutcome::Failed { .. }) {
                bar.println(line(outcome));
            }
            bar.inc(1);
        }
        None if !matches!(outcome, TenantOutcome::UpToDate { .. }) => {
            eprintln!("{}", line(outcome))
        }
        None => {}
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let failed = report.failed();
    eprintln!(
        "target version {}: {} tenants, {} failed",
        report.target_version,
        report.outcomes.len(),
        failed
    );
    Ok(if failed == 0 {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

fn line(outcome: &TenantOutcome) -> String {
    match outcome {
        TenantOutcome::Migrated { slug, from, to } => format!("migrated   {slug}: {from} -> {to}"),
        TenantOutcome::UpToDate { slug, version } => format!("up to date {slug}: {version}"),
        TenantOutcome::WouldMigrate { slug, from, to } => {
            format!("would migrate {slug}: {from} -> {to}")
        }
        TenantOutcome::Skipped { slug, status } => format!("skipped    {slug}: {status}"),
        TenantOutcome::Failed {
            slug,
            version,
            error,
        } => format!("FAILED     {slug} at {version}: {error}"),
    }
}
