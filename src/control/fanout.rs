//! The migration fan-out: bring every tenant database (or a target group, for a canary
//! rollout) to the current tenant schema, a bounded number at a time. One tenant's failure
//! marks only that tenant `migration_failed`; the rest go on, and a re-run resumes. The report
//! says what happened to each tenant, also when some failed.

use std::collections::BTreeMap;

use futures::{stream, StreamExt};
use serde::Serialize;

use super::{lifecycle, storage};
use crate::{
    clock,
    error::{Error, Result},
    registry::FanoutRun,
    state::AppState,
    tenant::{Status, TenantRecord},
};

/// Most tenant databases migrated at once.
pub const MAX_CONCURRENCY: usize = 64;

#[derive(Debug, Clone)]
pub struct FanoutOptions {
    /// Tenant databases migrated at once.
    pub concurrency: usize,
    /// A target group of slugs (canary); empty means every tenant.
    pub tenants: Vec<String>,
    /// Only report what would be migrated.
    pub dry_run: bool,
}

/// What happened to one tenant.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TenantOutcome {
    Migrated {
        slug: String,
        from: i64,
        to: i64,
    },
    UpToDate {
        slug: String,
        version: i64,
    },
    WouldMigrate {
        slug: String,
        from: i64,
        to: i64,
    },
    Skipped {
        slug: String,
        status: Status,
    },
    Failed {
        slug: String,
        version: i64,
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    /// The run's id in the fan-out history.
    pub id: String,
    pub target_version: i64,
    pub outcomes: Vec<TenantOutcome>,
}

impl FanoutReport {
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, TenantOutcome::Failed { .. }))
            .count()
    }
}

/// `{target_version, tenants_by_version, failed}` as `GET /admin/v1/migrations/status` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MigrationStatus {
    pub target_version: i64,
    pub tenants_by_version: BTreeMap<String, u64>,
    pub failed: Vec<FailedTenant>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailedTenant {
    pub slug: String,
    pub version: i64,
    pub error: String,
}

/// A validated run: its id (recorded in the registry unless a dry run) and its tenants.
pub struct PlannedRun {
    pub id: String,
    target: i64,
    dry_run: bool,
    concurrency: usize,
    tenants: Vec<TenantRecord>,
}

impl PlannedRun {
    /// How many tenants the run will look at.
    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }
}

/// Validates the options (an unknown slug is `422`) and records the run.
pub async fn plan(state: &AppState, options: &FanoutOptions) -> Result<PlannedRun> {
    if !(1..=MAX_CONCURRENCY).contains(&options.concurrency) {
        return Err(Error::field(
            "concurrency",
            format!("must be from 1 to {MAX_CONCURRENCY}"),
        ));
    }
    let target = state.schema.target_version();
    let tenants =
        if options.tenants.is_empty() {
            lifecycle::list_all(state).await?
        } else {
            let mut chosen = Vec::new();
            for slug in &options.tenants {
                chosen.push(lifecycle::find(state, slug).await.map_err(|_| {
                    Error::field("tenants", format!("no tenant with slug {slug:?}"))
                })?);
            }
            chosen
        };
    let run = FanoutRun {
        id: uuid::Uuid::now_v7().to_string(),
        target_version: target,
        concurrency: options.concurrency as i64,
        tenants: options.tenants.clone(),
        status: "running".into(),
        migrated: 0,
        failed: 0,
        started_at: clock::now_ms(),
        finished_at: None,
    };
    if !options.dry_run {
        state.registry.insert_run(&run).await?;
    }
    Ok(PlannedRun {
        id: run.id,
        target,
        dry_run: options.dry_run,
        concurrency: options.concurrency,
        tenants,
    })
}

/// Migrates the planned tenants, a bounded number at a time, and records the outcome.
pub async fn execute(
    state: &AppState,
    run: PlannedRun,
    on_outcome: impl Fn(&TenantOutcome),
) -> FanoutReport {
    let (target, dry_run) = (run.target, run.dry_run);
    let outcomes: Vec<TenantOutcome> = stream::iter(run.tenants)
        .map(|tenant| migrate_one(state, tenant, target, dry_run))
        .buffer_unordered(run.concurrency)
        .inspect(|outcome| on_outcome(outcome))
        .collect()
        .await;
    let report = FanoutReport {
        id: run.id,
        target_version: target,
        outcomes,
    };
    if !dry_run {
        let migrated = report
            .outcomes
            .iter()
            .filter(|o| matches!(o, TenantOutcome::Migrated { .. }))
            .count();
        if let Err(error) = state
            .registry
            .finish_run(&report.id, migrated as i64, report.failed() as i64)
            .await
        {
            tracing::error!(run = %report.id, %error, "could not record the end of a migration run");
        }
    }
    report
}

/// Plans and executes a run in the caller's task (the CLI).
pub async fn migrate(
    state: &AppState,
    options: &FanoutOptions,
    on_outcome: impl Fn(&TenantOutcome),
) -> Result<FanoutReport> {
    let run = plan(state, options).await?;
    Ok(execute(state, run, on_outcome).await)
}

/// Plans a run and executes it in the background (the admin API); returns its id at once.
pub async fn start_migration(state: &AppState, options: &FanoutOptions) -> Result<String> {
    let run = plan(state, options).await?;
    let id = run.id.clone();
    let task_state = state.clone();
    state.background.spawn(async move {
        let report = execute(&task_state, run, |_| {}).await;
        tracing::info!(run = %report.id, tenants = report.outcomes.len(), failed = report.failed(), "migration run finished");
    });
    Ok(id)
}

pub async fn find_run(state: &AppState, id: &str) -> Result<FanoutRun> {
    state
        .registry
        .find_run(id)
        .await?
        .ok_or_else(|| Error::not_found("migration run"))
}

async fn migrate_one(
    state: &AppState,
    planned: TenantRecord,
    target: i64,
    dry_run: bool,
) -> TenantOutcome {
    let slug = planned.slug.to_string();
    let _one_at_a_time = state.migration_locks.lock(planned.id).await;
    // The plan may be minutes old: decide on the tenant as it is now.
    let tenant = match state.registry.load(&planned.slug).await {
        Ok(Some(tenant)) if tenant.id == planned.id => tenant,
        Ok(_) => {
            return TenantOutcome::Skipped {
                slug,
                status: Status::Deleting,
            }
        }
        Err(error) => {
            return TenantOutcome::Failed {
                slug,
                version: planned.schema_version,
                error: error.to_string(),
            }
        }
    };
    if matches!(tenant.status, Status::Provisioning | Status::Deleting) {
        return TenantOutcome::Skipped {
            slug,
            status: tenant.status,
        };
    }
    let from = tenant.schema_version;
    // `migrating` here is a run that stopped part-way (a crash): it needs finishing too.
    let unfinished = matches!(tenant.status, Status::MigrationFailed | Status::Migrating);
    if from >= target && !unfinished {
        return TenantOutcome::UpToDate {
            slug,
            version: from,
        };
    }
    if dry_run {
        return TenantOutcome::WouldMigrate {
            slug,
            from,
            to: target,
        };
    }
    let result = async {
        // Serving tenants answer 503 while they migrate; a suspended one stays suspended.
        let serving = [Status::Active, Status::MigrationFailed, Status::Migrating];
        state
            .registry
            .transition(&tenant, &serving, Status::Migrating)
            .await?;
        let server = storage::server(state, &tenant)?;
        super::migrate_tenant(server, &tenant, &state.schema).await
    }
    .await;
    state.metrics.tenant_migrated(result.is_ok());
    let result = result.map_err(|e| e.to_string());
    let recorded = result
        .as_ref()
        .map(|version| *version)
        .map_err(String::as_str);
    if let Err(e) = state.registry.end_migration(&tenant, recorded).await {
        tracing::error!(tenant = %slug, error = %e, "could not record the end of a migration");
    }
    match result {
        Ok(to) => TenantOutcome::Migrated { slug, from, to },
        Err(error) => {
            tracing::error!(tenant = %slug, %error, "tenant migration failed");
            TenantOutcome::Failed {
                slug,
                version: from,
                error,
            }
        }
    }
}

pub async fn migration_status(state: &AppState) -> Result<MigrationStatus> {
    let mut status = MigrationStatus {
        target_version: state.schema.target_version(),
        tenants_by_version: BTreeMap::new(),
        failed: Vec::new(),
    };
    for tenant in lifecycle::list_all(state).await? {
        *status
            .tenants_by_version
            .entry(tenant.schema_version.to_string())
            .or_default() += 1;
        if tenant.status == Status::MigrationFailed {
            status.failed.push(FailedTenant {
                slug: tenant.slug.to_string(),
                version: tenant.schema_version,
                error: tenant.last_error.unwrap_or_default(),
            });
        }
    }
    Ok(status)
}
