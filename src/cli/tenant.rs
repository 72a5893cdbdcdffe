//! `silo tenant create | list | show | suspend | resume | rotate-keys | delete | export`. Tenants print as JSON on
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
            };
            print_tenant(&control::provision(state, request, IfExists::FinishProvisioning).await?);
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
                None => {
                    use std::io::Write;
                    std::io::stdout()
                        .write_all(text.as_bytes())
                        .map_err(anyhow::Error::from)?;
                }
            }
        }
    }
    Ok(Outcome::Success)
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
