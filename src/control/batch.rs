//! One batch of a fan-out: a few tenants of one server, marked `migrating` in one registry
//! statement, migrated one after another through one connection's room in the server's budget,
//! and recorded in one registry transaction.
//!
//! A batch is the unit of the fan-out's concurrency (`--concurrency` batches at once on each
//! server), so its costs are paid per batch, not per tenant. Its tenants answer 503 from the
//! moment the batch is marked until each one's end is recorded, so batches stay small.

use super::{
    fanout::TenantOutcome,
    migrate::{migrate_tenants, StopAfter},
};
use crate::{
    backend::Server,
    error::{Error, Result},
    pool::Reservation,
    registry::MigrationEnd,
    state::AppState,
    tenant::{Status, TenantRecord},
};

/// Most tenants in one batch.
pub const MAX_BATCH: usize = 16;

/// The plan already shows this tenant at `target` and nothing left to finish: no work at all.
/// `migrating` is a run that stopped part-way (a crash) or one still going; finishing it is
/// safe, as the database lets one migrator in at a time.
pub fn is_current(tenant: &TenantRecord, target: i64) -> bool {
    tenant.schema_version >= target
        && !matches!(tenant.status, Status::Migrating | Status::MigrationFailed)
}

/// Migrates one batch (tenants of one server) and records how each ended. A tenant not started
/// because the run stopped is left as it was and is not in the answer.
pub async fn migrate(
    state: &AppState,
    tenants: Vec<TenantRecord>,
    target: i64,
    dry_run: bool,
    stop: &StopAfter,
) -> Vec<TenantOutcome> {
    if dry_run {
        return tenants.iter().map(|t| would_do(t, target)).collect();
    }
    let failed = |error: &Error| -> Vec<TenantOutcome> {
        tenants
            .iter()
            .map(|t| TenantOutcome::Failed {
                slug: t.slug.to_string(),
                version: t.schema_version,
                error: error.detail(),
            })
            .collect()
    };
    // Decided on each tenant as it is now, not as the plan saw it.
    let statuses = match state.registry.begin_migrations(&tenants).await {
        Ok(statuses) => statuses,
        Err(error) => return failed(&error),
    };
    let mut outcomes = Vec::with_capacity(tenants.len());
    let mut chosen = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        let status = statuses
            .iter()
            .find(|(id, _)| *id == tenant.id)
            .map(|(_, status)| *status);
        match status {
            Some(Status::Migrating | Status::Suspended) => chosen.push(tenant),
            other => outcomes.push(TenantOutcome::Skipped {
                slug: tenant.slug.to_string(),
                status: other.unwrap_or(Status::Deleting),
            }),
        }
    }
    if chosen.is_empty() {
        return outcomes;
    }
    let results = match room_on_server(state, &chosen).await {
        Ok((server, _room)) => migrate_tenants(server, &chosen, &state.schema, stop).await,
        Err(error) => {
            let message = error.detail();
            let each = || Error::Internal(anyhow::anyhow!("{message}"));
            chosen.iter().map(|_| Some(Err(each()))).collect()
        }
    };
    let mut ended = Vec::with_capacity(chosen.len());
    for (tenant, result) in chosen.iter().zip(results) {
        let slug = tenant.slug.to_string();
        match result {
            None => ended.push((tenant, MigrationEnd::NotStarted(tenant.status))),
            Some(Ok(to)) => {
                state.metrics.tenant_migrated(true);
                ended.push((tenant, MigrationEnd::Migrated(to)));
                outcomes.push(TenantOutcome::Migrated {
                    slug,
                    from: tenant.schema_version,
                    to,
                });
            }
            Some(Err(error)) => {
                state.metrics.tenant_migrated(false);
                let error = error.detail();
                tracing::error!(tenant = %slug, %error, "tenant migration failed");
                ended.push((tenant, MigrationEnd::Failed(error.clone())));
                outcomes.push(TenantOutcome::Failed {
                    slug,
                    version: tenant.schema_version,
                    error,
                });
            }
        }
    }
    if let Err(error) = state.registry.end_migrations(&ended).await {
        tracing::error!(error = %error.detail(), "could not record the end of a batch of migrations");
    }
    outcomes
}

/// What a dry run says of a tenant the plan found not current.
fn would_do(tenant: &TenantRecord, target: i64) -> TenantOutcome {
    let slug = tenant.slug.to_string();
    match tenant.status {
        Status::Provisioning | Status::Deleting => TenantOutcome::Skipped {
            slug,
            status: tenant.status,
        },
        _ => TenantOutcome::WouldMigrate {
            slug,
            from: tenant.schema_version,
            to: target,
        },
    }
}

/// The batch's server, and room for its one connection in that server's budget.
async fn room_on_server<'a>(
    state: &'a AppState,
    tenants: &[TenantRecord],
) -> Result<(&'a Server, Reservation)> {
    let first = &tenants[0];
    let server = state.servers.of(first)?;
    Ok((server, state.pools.reserve_for_control(first, 1).await?))
}
