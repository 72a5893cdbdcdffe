//! `silo keys rotate | status`: move the fleet onto the current master key, and see where it
//! stands. The report prints as JSON on stdout; a progress bar (on a terminal) or a line per
//! tenant, and the summary, go to stderr.

use std::io::IsTerminal;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::Outcome;
use crate::{
    config::Settings,
    control::{self, RotationOutcome},
    error::Result,
    state::AppState,
};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate the keys of every tenant not on the current master key (secrets.master_key),
    /// a page of tenants after another. Tenants that are provisioning, migrating or being
    /// deleted are skipped; run it again to take up what is left. Exits 1 while any tenant is
    /// still on another key.
    Rotate(RotateArgs),
    /// Show the current master key's id, the previous ones configured, and tenants by key.
    Status,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Tenants rotated at once, 1-64.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
}

pub async fn run(settings: Settings, command: KeysCommand) -> Result<Outcome> {
    let state = AppState::build(settings).await?;
    let result = execute(&state, command).await;
    state.close().await;
    result
}

async fn execute(state: &AppState, command: KeysCommand) -> Result<Outcome> {
    match command {
        KeysCommand::Status => {
            let status = control::key_status(state).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&status).unwrap_or_default()
            );
            Ok(Outcome::Success)
        }
        KeysCommand::Rotate(args) => {
            // A progress bar on a terminal (sized by the tenants on other keys now); plain
            // lines, one per tenant, otherwise.
            let bar = match std::io::stderr().is_terminal() {
                true => {
                    let behind = control::key_status(state).await?.tenants_on_other_keys;
                    let bar = ProgressBar::new(behind.max(0) as u64);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{bar:40} {pos}/{len} tenants {elapsed_precise}",
                        )
                        .expect("a valid template"),
                    );
                    Some(bar)
                }
                false => None,
            };
            let report = control::rotate_fleet(state, usize::from(args.concurrency), |outcome| {
                let line = match outcome {
                    RotationOutcome::Rotated(r) => format!(
                        "rotated {}: {}.v{} -> {}.v{}",
                        r.slug, r.from.key, r.from.version, r.to.key, r.to.version
                    ),
                    RotationOutcome::Skipped(s) => {
                        format!("skipped {}: it is {}", s.slug, s.status)
                    }
                    RotationOutcome::Failed(f) => format!("failed {}: {}", f.slug, f.error),
                };
                match &bar {
                    Some(bar) => {
                        if !matches!(outcome, RotationOutcome::Rotated(_)) {
                            bar.println(line);
                        }
                        bar.inc(1);
                    }
                    None => eprintln!("{line}"),
                }
            })
            .await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let report = report?;
            eprintln!(
                "key {}: {} tenants on other keys, {} rotated, {} skipped, {} failed; {} still to rotate",
                report.key,
                report.tenants,
                report.rotated,
                report.skipped.len(),
                report.failed.len(),
                report.remaining
            );
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            Ok(match report.remaining {
                0 => Outcome::Success,
                _ => Outcome::Failed,
            })
        }
    }
}
