//! `silo tenant create | list | show | suspend | resume | rotate-keys | delete | export |
//! backup | restore | move | usage | runs`. Tenants print as JSON on
//! stdout (the admin API's shape), lists as a table; messages go to stderr.

use std::io::{BufRead, IsTerminal};

use clap::{Args, Subcommand};

use super::Outcome;
use crate::{
    config::Settings,
    control::{self, IfExists, Owner, ProvisionRequest},
    error::{Error, Result},
    state::AppState,
    tenant::{Slug, TenantRecord},
};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Provision a tenant: registry row, database, migrations, plan seed, owner. Running it
    /// again for a tenant left in `provisioning` by a failed run finishes the job.
    Create(CreateArgs),
    /// List every tenant, oldest first.
    List,
    /// Show one tenant.
    Show {
        #[arg(value_parser = slug_argument)]
        slug: Slug,
    },
    /// Suspend a tenant: its requests get 403 tenant_suspended.
    Suspend {
        #[arg(value_parser = slug_argument)]
        slug: Slug,
    },
    /// Resume a suspended tenant.
    Resume {
        #[arg(value_parser = slug_argument)]
        slug: Slug,
    },
    /// Write a tenant's data as JSON lines (the admin API's export), to stdout or --out.
    Export {
        #[arg(value_parser = slug_argument)]
        slug: Slug,
        /// The file to write (made, or replaced once the export is complete).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Write a backup of a tenant's database (every table, taken online in one snapshot), to
    /// stdout or --out.
    Backup {
        #[arg(value_parser = slug_argument)]
        slug: Slug,
        /// The file to write (made, or replaced once the backup is complete).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Restore a backup file into the tenant it was taken of (suspended first: its data is
    /// replaced whole) or under a slug nobody has (a new tenant).
    Restore {
        slug: String,
        /// The backup file, as `silo tenant backup` wrote it.
        #[arg(long)]
        from: std::path::PathBuf,
    },
    /// Move a tenant's database to another server: copied online, switched in one short step,
    /// verified, announced to every router; the old copy is dropped.
    Move {
        #[arg(value_parser = slug_argument)]
        slug: Slug,
        /// A server of this configuration ([servers.<name>]).
        #[arg(long)]
        to: String,
    },
    /// Every tenant's usage, largest first: requests served, and its last measured users,
    /// projects and database size.
    Usage {
        /// requests, users, projects or database_bytes.
        #[arg(long, default_value = "requests", value_parser = usage_sort)]
        sort: String,
        /// Tenants listed, 1 to 1000.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Measure every tenant first (as stats does), four at a time.
        #[arg(long)]
        measure: bool,
    },
    /// The lifecycle runs recorded for a tenant (backups, restores, clones, moves, key
    /// rotations), newest first.
    Runs {
        #[arg(value_parser = slug_argument)]
        slug: Slug,
    },
    /// Rotate a tenant's keys: its JWT key and database role password move to the next
    /// version under the current master key; tokens signed before work until they expire.
    RotateKeys {
        #[arg(value_parser = slug_argument)]
        slug: Slug,
    },
    /// Delete a tenant and its database. Irreversible.
    Delete {
        #[arg(value_parser = slug_argument)]
        slug: Slug,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// 3-63 characters of a-z, 0-9 and -, starting with a letter.
    slug: String,
    /// Display name (default: the slug).
    #[arg(long)]
    name: Option<String>,
    /// A plan under tenant_templates/ (default: free).
    #[arg(long)]
    plan: Option<String>,
    /// The server for its database (default: the one with the fewest tenants).
    #[arg(long)]
    server: Option<String>,
    /// A custom domain; repeat for several.
    #[arg(long = "domain", value_name = "DOMAIN")]
    domains: Vec<String>,
    /// Email of the first owner; the password is read from stdin.
    #[arg(long, requires = "owner_password_stdin")]
    owner_email: Option<String>,
    /// Read the owner's password from the first line of stdin.
    #[arg(long, requires = "owner_email")]
    owner_password_stdin: bool,
    /// Copy this tenant: the new tenant's database starts as a copy of its database, without
    /// its sessions, API tokens and invitations; its plan unless --plan is given.
    #[arg(long, value_name = "SLUG", conflicts_with = "owner_email")]
    from: Option<String>,
}

/// Writes `bytes` to `path` through a temporary file beside it, renamed into place once
/// complete: a reader never sees half an export, and an existing file is replaced whole.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use anyhow::Context;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn usage_sort(raw: &str) -> std::result::Result<String, String> {
    crate::registry::UsageSort::parse(raw)
        .map(|_| raw.to_owned())
        .ok_or_else(|| format!("one of {}", crate::registry::UsageSort::NAMES.join(", ")))
}

/// A slug argument of an existing tenant: one that cannot be a slug is a bad argument (exit 2),
/// not a tenant that was not found (exit 1).
fn slug_argument(raw: &str) -> std::result::Result<Slug, String> {
    Slug::parse_shape(raw).map_err(|problem| format!("not a slug: {problem}"))
}

pub async fn run(settings: Settings, command: TenantCommand) -> Result<Outcome> {
    if let TenantCommand::Delete { yes: false, slug } = &command {
        return Err(Error::BadRequest(format!(
            "deleting {slug} removes its database for good; add --yes"
        )));
    }
    let owner_password = match &command {
        TenantCommand::Create(args) if args.owner_password_stdin => Some(read_password()?),
        _ => None,
    };
    let state = AppState::build(settings).await?;
    let result = execute(&state, command, owner_password).await;
    state.close().await;
    result
}

async fn execute(
    state: &AppState,
    command: TenantCommand,
    owner_password: Option<String>,
) -> Result<Outcome> {
    match command {
        TenantCommand::Create(args) => {
            let owner = args.owner_email.map(|email| Owner {
                email,
                password: owner_password.unwrap_or_default(),
            });
            let request = ProvisionRequest {
                slug: args.slug,
                name: args.name,
                plan: args.plan,
                server: args.server,
                domains: args.domains,
                owner,
                ..ProvisionRequest::default()
            };
            let made = match args.from {
                Some(from) => {
                    control::clone_tenant(state, request, &from, IfExists::FinishProvisioning)
                        .await?
                }
                None => control::provision(state, request, IfExists::FinishProvisioning).await?,
            };
            print_tenant(&made);
        }
        TenantCommand::List => print_table(&control::list_all(state).await?),
        TenantCommand::Show { slug } => print_tenant(&control::find(state, slug.as_str()).await?),
        TenantCommand::Suspend { slug } => {
            print_tenant(&control::suspend(state, slug.as_str()).await?)
        }
        TenantCommand::Resume { slug } => {
            print_tenant(&control::resume(state, slug.as_str()).await?)
        }
        TenantCommand::RotateKeys { slug } => {
            let rotated = control::rotate_keys(state, slug.as_str()).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&rotated).unwrap_or_default()
            );
        }
        TenantCommand::Delete { slug, .. } => {
            control::delete(state, slug.as_str()).await?;
            eprintln!("deleted {slug}");
        }
        TenantCommand::Backup { slug, out } => {
            let backup = control::backup(state, slug.as_str()).await?;
            let text = backup.to_file();
            match out {
                Some(path) => {
                    write_whole(&path, text.as_bytes())?;
                    eprintln!("backed up {slug} to {}", path.display());
                }
                None => write_stdout(text.as_bytes())?,
            }
        }
        TenantCommand::Restore { slug, from } => {
            let text = std::fs::read_to_string(&from)
                .map_err(|e| Error::BadRequest(format!("cannot read {}: {e}", from.display())))?;
            let backup = control::Backup::parse(&text)?;
            print_tenant(&control::restore(state, &slug, backup).await?);
        }
        TenantCommand::Move { slug, to } => {
            print_tenant(&control::move_tenant(state, slug.as_str(), &to).await?)
        }
        TenantCommand::Usage {
            sort,
            limit,
            measure,
        } => {
            if measure {
                let (measured, failed) = control::measure_all(state, 4).await?;
                eprintln!("measured {measured} of {} tenants", measured + failed);
            }
            let sort = crate::registry::UsageSort::parse(&sort)
                .ok_or_else(|| Error::field("sort", "unknown"))?;
            let rows = control::usage(state, sort, limit).await?;
            println!(
                "{:<24} {:<18} {:>10} {:>8} {:>9} {:>14}  MEASURED",
                "SLUG", "STATUS", "REQUESTS", "USERS", "PROJECTS", "DB BYTES"
            );
            let shown = |n: Option<i64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
            for row in rows {
                println!(
                    "{:<24} {:<18} {:>10} {:>8} {:>9} {:>14}  {}",
                    row.slug,
                    row.status,
                    row.requests,
                    shown(row.users),
                    shown(row.projects),
                    shown(row.database_bytes),
                    row.measured_at
                        .map(crate::clock::rfc3339)
                        .unwrap_or_default()
                );
            }
        }
        TenantCommand::Runs { slug } => {
            let runs = control::runs(state, slug.as_str(), u32::MAX).await?;
            println!(
                "{:<36}  {:<8} {:<10} {:<25}  ERROR",
                "ID", "KIND", "STATUS", "STARTED"
            );
            for run in runs {
                println!(
                    "{:<36}  {:<8} {:<10} {:<25}  {}",
                    run.id,
                    run.kind,
                    run.status,
                    crate::clock::rfc3339(run.started_at),
                    run.error.unwrap_or_default()
                );
            }
        }
        TenantCommand::Export { slug, out } => {
            let lines = control::export(state, slug.as_str()).await?;
            let text = lines.join("\n") + "\n";
            match out {
                Some(path) => {
                    write_whole(&path, text.as_bytes())?;
                    eprintln!(
                        "exported {slug}: {} rows to {}",
                        lines.len() - 1,
                        path.display()
                    );
                }
                None => write_stdout(text.as_bytes())?,
            }
        }
    }
    Ok(Outcome::Success)
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    std::io::stdout()
        .write_all(bytes)
        .map_err(|e| anyhow::Error::from(e).into())
}

fn read_password() -> Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("owner password: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::BadRequest(format!("reading the password from stdin: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn print_tenant(tenant: &TenantRecord) {
    println!(
        "{}",
        serde_json::to_string_pretty(tenant).unwrap_or_default()
    );
}

fn print_table(tenants: &[TenantRecord]) {
    println!(
        "{:<24} {:<18} {:<8} {:<10} {:>7}  ID",
        "SLUG", "STATUS", "PLAN", "SERVER", "SCHEMA"
    );
    for t in tenants {
        println!(
            "{:<24} {:<18} {:<8} {:<10} {:>7}  {}",
            t.slug, t.status, t.plan, t.server, t.schema_version, t.id
        );
    }
}
