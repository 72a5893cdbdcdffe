//! Provisioning, the one routine behind `silo tenant create`, `POST /admin/v1/tenants` and
//! `scripts/provision-tenant.sh`: validate -> registry row `provisioning` -> database -> tenant
//! migrations -> the plan's seed -> owner -> `active`. Everything is checked before anything is
//! created; every later step is idempotent, so re-running on a half-made tenant finishes it.

use std::{collections::BTreeSet, sync::Arc, time::Instant};

use sqlx::{AnyPool, Executor};

use super::{
    placement,
    snapshot::{self, Dialect, Table},
};
use crate::{
    backend::{BuildLock, ControlRole},
    error::{Error, Result},
    identity::{validate_name, validate_password, Email, NewUser, Role, User},
    plans::Plan,
    registry::NewTenant,
    state::AppState,
    tenant::{Domain, Slug, Status, TenantId, TenantRecord},
    webhooks::{Event, EventType},
};

/// What an operator asks for. Raw strings: validation is part of the routine.
#[derive(Debug, Clone, Default)]
pub struct ProvisionRequest {
    pub slug: String,
    pub name: Option<String>,
    pub plan: Option<String>,
    pub server: Option<String>,
    pub domains: Vec<String>,
    pub owner: Option<Owner>,
    /// The new tenant's id, when the caller chose it (to record a run under it first); a new
    /// one otherwise.
    pub id: Option<TenantId>,
    /// What the new database starts with instead of the plan's seed and an owner: a restored
    /// backup's or a clone's source's tables.
    pub contents: Option<Contents>,
}

/// A new tenant's first contents; never printed (they hold password hashes).
#[derive(Clone)]
pub struct Contents(pub Arc<Vec<Table>>);

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Contents({} tables)", self.0.len())
    }
}

#[derive(Clone)]
pub struct Owner {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// What to do when the slug is already in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    /// The admin API: any existing slug is `409 conflict`.
    Conflict,
    /// The CLI and script: a tenant left in `provisioning` is finished; any other is `409`.
    FinishProvisioning,
}

struct Valid {
    id: Option<TenantId>,
    slug: Slug,
    name: String,
    plan: Plan,
    server: Option<String>,
    domains: Vec<String>,
    owner: Option<(Email, String)>,
    contents: Option<Contents>,
}

#[tracing::instrument(skip_all, fields(tenant = %request.slug))]
pub async fn provision(
    state: &AppState,
    request: ProvisionRequest,
    if_exists: IfExists,
) -> Result<TenantRecord> {
    let valid = validate(state, request)?;
    let phases = Phases::new(state);
    // `inserted`: this run made the row, so no other run can be writing it yet.
    let (record, inserted) = match state.registry.load(&valid.slug).await? {
        Some(existing)
            if if_exists == IfExists::FinishProvisioning
                && existing.status == Status::Provisioning =>
        {
            tracing::info!("finishing a tenant left in provisioning");
            (existing, false)
        }
        Some(_) => {
            return Err(Error::Conflict(format!(
                "a tenant with slug {} already exists",
                valid.slug
            )))
        }
        None => {
            let server = placement::choose_server(state, valid.server.as_deref()).await?;
            let id = valid.id.unwrap_or_else(TenantId::new);
            let database = state
                .servers
                .get(&server)
                .ok_or_else(|| Error::field("server", format!("unknown server {server:?}")))?
                .database_name(id);
            let record = state
                .registry
                .insert(&NewTenant {
                    id,
                    slug: valid.slug.clone(),
                    name: valid.name.clone(),
                    plan: valid.plan.name.clone(),
                    server,
                    database,
                    domains: valid.domains.clone(),
                    credentials_key: state.secrets.key_id().to_owned(),
                })
                .await?;
            (record, true)
        }
    };

    // Room in the server's budget for the run's own connections, first (see
    // `Server::provisioning_connections`). One run builds a tenant at a time; a run that finds it
    // already claimed is a conflict. A lock that cannot be taken for another reason (its
    // directory cannot be made, say) is a failure to record on a row this run just made; on an
    // older row another run may be writing, so the error only goes back.
    let locked = match state.servers.of(&record) {
        Ok(server) => {
            let needed = server.provisioning_connections();
            match state.pools.reserve_for_control(&record, needed).await {
                Ok(room) => server.lock_build(&record).await.map(|lock| (lock, room)),
                Err(error) => Err(error),
            }
        }
        Err(error) => Err(error),
    };
    phases.done("registry");
    let (mut lock, _room) = match locked {
        Ok(locked) => locked,
        Err(error @ Error::Internal(_)) if inserted => return failed(state, &record, error).await,
        Err(error) => return Err(error),
    };
    // Another run may have finished it between our read and the lock.
    match state.registry.load(&record.slug).await? {
        Some(current) if current.id == record.id && current.status == Status::Provisioning => {}
        _ => {
            return Err(Error::Conflict(format!(
                "tenant {} was finished or removed by another run meanwhile",
                record.slug
            )))
        }
    }
    phases.done("lock");
    match build(state, &record, &valid, &mut lock, &phases).await {
        Ok(version) => {
            state.metrics.provisioned(true);
            state.registry.set_schema_version(&record, version).await?;
            // `tenant.created` is recorded with the status `active`, in its transaction.
            let created = Event::new(
                EventType::Created,
                &record,
                serde_json::json!({
                    "name": record.name,
                    "plan": record.plan,
                    "server": record.server,
                    "schema_version": version,
                    "domains": record.domains,
                }),
            );
            state
                .registry
                .set_status_noting(&record, Status::Active, None, &[created])
                .await?;
            // Safe while we hold it: a run that opens the old file, or makes a new one, finds
            // the tenant active once it has the lock, and stops there.
            lock.release_and_remove();
            tracing::info!(id = %record.id, "tenant provisioned");
            let made = state
                .registry
                .load(&record.slug)
                .await?
                .ok_or_else(|| Error::not_found("tenant"));
            phases.done("registry");
            made
        }
        // Still under the lock: no other run writes the row meanwhile.
        Err(error) => failed(state, &record, error).await,
    }
}

/// Where a provisioning run's time goes, by phase, in
/// `silo_provisioning_phase_duration_seconds` (what `scripts/bench.sh provision` splits by).
struct Phases<'a> {
    state: &'a AppState,
    since: std::sync::Mutex<Instant>,
}

impl<'a> Phases<'a> {
    fn new(state: &'a AppState) -> Self {
        Self {
            state,
            since: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Records the time since the last phase ended as `phase`'s.
    fn done(&self, phase: &'static str) {
        let now = Instant::now();
        let mut since = self.since.lock().unwrap_or_else(|p| p.into_inner());
        let seconds = (now - *since).as_secs_f64();
        self.state.metrics.provisioning_phase(phase, seconds);
        *since = now;
    }

    /// Records a phase that ran beside the others, from its own start.
    fn beside(&self, phase: &'static str, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        self.state.metrics.provisioning_phase(phase, seconds);
    }
}

/// Leaves the tenant in `provisioning` with the reason in `last_error`, for a re-run to finish.
async fn failed(state: &AppState, record: &TenantRecord, error: Error) -> Result<TenantRecord> {
    state.metrics.provisioned(false);
    let reason = format!("provisioning failed: {}", error.detail());
    tracing::error!(error = %reason, "tenant left in provisioning; run the create again to finish it");
    state
        .registry
        .set_status(record, Status::Provisioning, Some(&reason))
        .await?;
    Err(error)
}

fn validate(state: &AppState, request: ProvisionRequest) -> Result<Valid> {
    let slug = Slug::parse(&request.slug, &state.settings.resolve.reserved_slugs).map_err(|m| {
        Error::field(
            "slug",
            format!("{m} (3-63 of a-z, 0-9, -; starts with a letter)"),
        )
    })?;
    let name = match &request.name {
        Some(name) => validate_name("name", name)?,
        None => slug.to_string(),
    };
    let plan_name = request
        .plan
        .as_deref()
        .unwrap_or(state.plans.default_name());
    let plan = state.plans.get(plan_name).cloned().ok_or_else(|| {
        Error::field(
            "plan",
            format!(
                "unknown plan {plan_name:?} (known: {})",
                state.plans.names().join(", ")
            ),
        )
    })?;
    if let Some(server) = &request.server {
        if state.servers.get(server).is_none() {
            return Err(Error::field("server", format!("unknown server {server:?}")));
        }
    }
    let mut domains = BTreeSet::new();
    for raw in &request.domains {
        let domain = Domain::parse(raw, &state.settings.resolve.base_domain)
            .map_err(|m| Error::field("domains", format!("{raw:?} {m}")))?;
        domains.insert(domain.as_str().to_owned());
    }
    let owner = match request.owner {
        None => None,
        Some(owner) => {
            let email = Email::parse(&owner.email).map_err(|m| Error::field("owner_email", m))?;
            validate_password(&owner.password)
                .map_err(|_| Error::field("owner_password", "must be 8 to 1024 characters"))?;
            Some((email, owner.password))
        }
    };
    Ok(Valid {
        id: request.id,
        slug,
        name,
        plan,
        server: request.server,
        domains: domains.into_iter().collect(),
        owner,
        contents: request.contents,
    })
}

/// The idempotent part: database, schema, seed, owner. Returns the schema version.
///
/// Runs under the tenant's build lock. A run that fails after creating the database removes it
/// again, so no half-built database stays behind; the re-run that finishes the tenant builds it
/// anew from the template. A database this run did not create (an earlier run's) is left alone.
async fn build(
    state: &AppState,
    record: &TenantRecord,
    valid: &Valid,
    lock: &mut BuildLock,
    phases: &Phases<'_>,
) -> Result<i64> {
    let server = state.servers.of(record)?;
    // The owner's password hash (CPU here) is made while the database is (mostly the disk's
    // and the server's time), rather than after it.
    let hashing = async {
        let Some((_, password)) = &valid.owner else {
            return Ok(None);
        };
        let started = Instant::now();
        let hash = state.passwords.hash(record.id, password).await?;
        phases.beside("owner_hash", started);
        Ok(Some(hash))
    };
    let (created, hash) =
        tokio::join!(server.create_database(record, &state.schema, lock), hashing);
    let created = created?;
    phases.done("database");
    let result = match hash {
        Ok(hash) => fill(state, record, valid, hash, phases).await,
        Err(error) => Err(error),
    };
    if result.is_err() && created {
        if let Err(error) = server.drop_database(record).await {
            tracing::warn!(error = %error, "could not remove the half-built database");
        }
    }
    result
}

/// Schema, seed and owner (or the contents a copy starts with), on a database that exists. The seed and the owner are written as
/// the tenant's own role (see [`crate::backend::Server::connect_control`]).
async fn fill(
    state: &AppState,
    record: &TenantRecord,
    valid: &Valid,
    owner_hash: Option<String>,
    phases: &Phases<'_>,
) -> Result<i64> {
    let server = state.servers.of(record)?;
    let version = super::migrate_tenant(server, record, &state.schema).await?;
    phases.done("schema");
    let pool = server.connect_control(record, ControlRole::Tenant).await?;
    let result = async {
        if let Some(Contents(tables)) = &valid.contents {
            snapshot::replace(&pool, Dialect::of(server), tables).await?;
            phases.done("contents");
            return Ok(version);
        }
        // On a re-run the row is the truth: the tenant is seeded with the plan it was created with.
        let plan = state.plans.get(&record.plan).unwrap_or(&valid.plan);
        seed(&pool, plan).await?;
        phases.done("seed");
        if let (Some((email, _)), Some(hash)) = (&valid.owner, owner_hash) {
            create_owner(&pool, email, &hash).await?;
            phases.done("owner");
        }
        Ok(version)
    }
    .await;
    pool.close().await;
    result
}

/// Applies the plan's `seed.sql` once; the marker row is written in the same transaction.
async fn seed(pool: &AnyPool, plan: &Plan) -> Result<()> {
    let mut tx = pool.begin().await?;
    let seeded: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'seeded_plan'")
            .fetch_optional(&mut *tx)
            .await?;
    if seeded.is_some() {
        return Ok(());
    }
    if !plan.seed_sql.trim().is_empty() {
        // A bare string runs as a simple query: several statements in one go on both backends.
        (&mut *tx)
            .execute(plan.seed_sql.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("the seed of plan {} failed: {e}", plan.name))?;
    }
    sqlx::query("INSERT INTO settings (key, value) VALUES ('seeded_plan', $1)")
        .bind(&plan.name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The first owner, with its password already hashed; on a re-run an existing account with
/// that email is left as it is.
async fn create_owner(pool: &AnyPool, email: &Email, password_hash: &str) -> Result<()> {
    if User::with_hash_by_email(&mut *pool.acquire().await?, email)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let new = NewUser {
        email,
        name: email.local_part(),
        password_hash,
        role: Role::Owner,
    };
    User::create(&mut *pool.acquire().await?, new).await?;
    Ok(())
}
