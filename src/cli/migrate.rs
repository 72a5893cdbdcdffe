//! `silo migrate` and `silo migrate status`: roll tenant migrations out, canary first if you
//! like (`--tenant a --tenant b`), then everyone; see where the fleet stands.

use std::io::IsTerminal;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::Outcome;
use crate::{
    config::Settings,
    control::{self, FanoutOptions, FanoutReport, TenantOutcome},
    error::{Error, Result},
    state::AppState,
};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MigrateArgs {
    #[command(subcommand)]
    command: Option<MigrateCommand>,
    /// Tenant databases migrated at once on each server (never more than its connection
    /// budget leaves).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Migrate this tenant (a canary target group); repeat for several. With --plan, tenants
    /// named here or on those plans.
    #[arg(long = "tenant", value_name = "SLUG")]
    tenants: Vec<String>,
    /// Migrate every tenant of this plan (a target group); repeat for several.
    #[arg(long = "plan", value_name = "PLAN")]
    plans: Vec<String>,
    /// Show what would be migrated, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Stop starting tenants once this many have failed (default: no limit); the run then says
    /// how many it did not start.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_failures: Option<u64>,
    /// A folder of tenant migrations to roll out instead of the built-in ones (as
    /// migrations.dir; checked before any tenant is touched).
    #[arg(long, value_name = "DIR")]
    migrations: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Target version, tenants per schema version, and failed tenants.
    Status,
}

pub async fn run(mut settings: Settings, args: MigrateArgs) -> Result<Outcome> {
    if let Some(dir) = &args.migrations {
        settings.migrations.dir = dir.clone();
        // A bad folder is a bad argument (exit 2), found before any tenant is touched.
        crate::schema::TenantSchema::load(dir)
            .map_err(|message| Error::field("migrations", message))?;
    }
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
        plans: args.plans,
        dry_run: args.dry_run,
        max_failures: args.max_failures.map(|n| n as usize),
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
    eprintln!("{}", summary(&report));
    let failed: Vec<String> = report
        .outcomes
        .iter()
        .filter(|o| matches!(o, TenantOutcome::Failed { .. }))
        .map(line)
        .collect();
    if failed.is_empty() {
        return Ok(Outcome::Success);
    }
    eprintln!("failed tenants (each unchanged, answering 503 until a run migrates it):");
    for line in failed {
        eprintln!("  {line}");
    }
    Ok(Outcome::Failed)
}

/// One line: what the run did to how many tenants.
fn summary(report: &FanoutReport) -> String {
    let mut parts = vec![format!("{} tenants", report.outcomes.len())];
    for (what, count) in [
        ("migrated", report.migrated()),
        (
            "would migrate",
            report.count(|o| matches!(o, TenantOutcome::WouldMigrate { .. })),
        ),
        (
            "up to date",
            report.count(|o| matches!(o, TenantOutcome::UpToDate { .. })),
        ),
        (
            "skipped",
            report.count(|o| matches!(o, TenantOutcome::Skipped { .. })),
        ),
        ("failed", report.failed()),
    ] {
        if count > 0 || what == "failed" {
            parts.push(format!("{count} {what}"));
        }
    }
    let mut text = format!(
        "target version {}: {}",
        report.target_version,
        parts.join(", ")
    );
    if report.not_started > 0 {
        text.push_str(&format!(
            "; stopped after {} failures, {} tenants not started",
            report.failed(),
            report.not_started
        ));
    }
    text
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
