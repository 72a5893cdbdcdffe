//! The migration fan-out: bring every tenant database (or a target group, for a canary
//! rollout) to the current tenant schema, a bounded number at a time. One tenant's failure
//! marks only that tenant `migration_failed`; the rest go on, and a re-run resumes. The report
//! says what happened to each tenant, also when some failed.

use std::collections::BTreeMap;

use futures::{future, stream, StreamExt};
use serde::Serialize;

use super::{batch, lifecycle, migrate::StopAfter};
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
    /// Tenant databases migrated at once on each server (and never more than its budget
    /// leaves).
    pub concurrency: usize,
    /// Target groups: these slugs, and every tenant of these plans (a canary rollout); both
    /// empty means every tenant.
    pub tenants: Vec<String>,
    pub plans: Vec<String>,
    /// Only report what would be migrated.
    pub dry_run: bool,
    /// Stop starting tenants once this many have failed (none: go through every tenant).
    pub max_failures: Option<usize>,
}

impl Default for FanoutOptions {
    /// Every tenant, four at a time on each server, to the end.
    fn default() -> Self {
        Self {
            concurrency: 4,
            tenants: Vec::new(),
            plans: Vec::new(),
            dry_run: false,
            max_failures: None,
        }
    }
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
    /// Tenants of the run never started, because `max_failures` stopped it.
    pub not_started: usize,
}

impl FanoutReport {
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, TenantOutcome::Failed { .. }))
    }

    pub fn migrated(&self) -> usize {
        self.count(|o| matches!(o, TenantOutcome::Migrated { .. }))
    }

    pub fn count(&self, what: impl Fn(&TenantOutcome) -> bool) -> usize {
        self.outcomes.iter().filter(|o| what(o)).count()
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
    max_failures: Option<usize>,
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
    if options.max_failures == Some(0) {
        return Err(Error::field("max_failures", "must be at least 1"));
    }
    for plan in &options.plans {
        if state.plans.get(plan).is_none() {
            return Err(Error::field("plans", format!("no plan named {plan:?}")));
        }
    }
    let target = state.schema.target_version();
    let mut tenants = lifecycle::list_all(state).await?;
    if !options.tenants.is_empty() || !options.plans.is_empty() {
        for slug in &options.tenants {
            if !tenants.iter().any(|t| t.slug.as_str() == slug) {
                return Err(Error::field(
                    "tenants",
                    format!("no tenant with slug {slug:?}"),
                ));
            }
        }
        tenants.retain(|t| {
            options.tenants.iter().any(|slug| t.slug.as_str() == slug)
                || options.plans.contains(&t.plan)
        });
    }
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
        max_failures: options.max_failures,
        tenants,
    })
}

/// Migrates the planned tenants, `concurrency` batches at a time on each server, and records
/// the outcome. A tenant already current costs nothing here: the plan's registry read showed it.
pub async fn execute(
    state: &AppState,
    run: PlannedRun,
    on_outcome: impl Fn(&TenantOutcome),
) -> FanoutReport {
    let (target, dry_run) = (run.target, run.dry_run);
    let planned = run.tenants.len();
    let stop = StopAfter::failures(run.max_failures);
    let mut outcomes = Vec::with_capacity(planned);
    let mut by_server: BTreeMap<String, Vec<TenantRecord>> = BTreeMap::new();
    for tenant in run.tenants {
        if batch::is_current(&tenant, target) {
            let outcome = TenantOutcome::UpToDate {
                slug: tenant.slug.to_string(),
                version: tenant.schema_version,
            };
            on_outcome(&outcome);
            outcomes.push(outcome);
        } else {
            by_server
                .entry(tenant.server.to_string())
                .or_default()
                .push(tenant);
        }
    }
    let servers = by_server.into_values().map(|tenants| {
        // Batches small enough that every worker has some, and that a batch's tenants wait
        // (`migrating`) only briefly for their turn.
        let size = tenants
            .len()
            .div_ceil(run.concurrency)
            .clamp(1, batch::MAX_BATCH);
        let batches: Vec<Vec<TenantRecord>> =
            tenants.chunks(size).map(<[TenantRecord]>::to_vec).collect();
        stream::iter(batches)
            // Checked as each next batch is about to start, so none starts once stopped.
            .take_while(|_| future::ready(!stop.reached()))
            .map(|tenants| batch::migrate(state, tenants, target, dry_run, &stop))
            .buffer_unordered(run.concurrency)
            .boxed()
    });
    let mut batches = stream::select_all(servers);
    while let Some(batch) = batches.next().await {
        for outcome in batch {
            on_outcome(&outcome);
            outcomes.push(outcome);
        }
    }
    let report = FanoutReport {
        id: run.id,
        target_version: target,
        not_started: planned - outcomes.len(),
        outcomes,
    };
    if !dry_run {
        if let Err(error) = state
            .registry
            .finish_run(&report.id, report.migrated() as i64, report.failed() as i64)
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
