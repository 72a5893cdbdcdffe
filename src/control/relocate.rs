//! Moving a tenant's database to another server: `silo tenant move <slug> --to <server>`,
//! `POST /admin/v1/tenants/{slug}/move`.
//!
//! 1. The new copy is made on the target server as provisioning makes one (its own role there
//!    on PostgreSQL), and filled with a snapshot read online: writes go on meanwhile, and any
//!    failure so far leaves the tenant where it was, the new copy removed.
//! 2. The final switch: one transaction on the old copy holds its writers off (SQLite's write
//!    lock; PostgreSQL's `EXCLUSIVE` table locks, which let reads on), reads it again, loads that
//!    into the new copy (replacing step 1's), checks it by reading it back, and *fences* the old
//!    copy (triggers that refuse every write with `503` and `Retry-After`), all committed
//!    together; then the registry row is pointed at the new copy (every router is told, and
//!    `tenant.moved` is in the webhook outbox in the same registry transaction). A write that was
//!    waiting on the lock meets the fence, never a copy that no longer counts. Should the
//!    registry refuse, the fence is taken down and the tenant stays where it was.
//! 3. The old copy is dropped, after a short grace for routers still reading it.
//!
//! Both servers' build locks are held throughout, so no provisioning run, deletion, restore or
//! other move of the tenant can run beside it.

use std::time::Duration;

use serde_json::json;

use super::{
    lifecycle, runs,
    snapshot::{self, Dialect},
};
use crate::{
    audit,
    backend::{BuildLock, ControlRole, Server},
    error::{Error, Result},
    state::AppState,
    tenant::{Status, TenantRecord},
    webhooks::{Event, EventType},
};

/// How long the old copy outlives the switch when the registry announces changes (PostgreSQL):
/// every router has heard by then. A SQLite registry has one router per file in practice,
/// whose own write evicted it at once; another process on the same file learns within
/// `registry.cache_ttl_secs`, and its requests to the tenant answer `503` until then.
const ANNOUNCED_GRACE: Duration = Duration::from_secs(2);

/// Moves tenant `slug`'s database to server `to`; answers the tenant as it is afterwards.
pub async fn move_tenant(state: &AppState, slug: &str, to: &str) -> Result<TenantRecord> {
    let tenant = lifecycle::find(state, slug).await?;
    let target = state
        .servers
        .get(to)
        .ok_or_else(|| {
            Error::field(
                "to",
                format!(
                    "unknown server {to:?} (known: {})",
                    state.servers.names().collect::<Vec<_>>().join(", ")
                ),
            )
        })?
        .clone();
    if tenant.server == to {
        return Err(Error::Conflict(format!(
            "tenant {} is already on server {to}",
            tenant.slug
        )));
    }
    if !matches!(tenant.status, Status::Active | Status::Suspended) {
        return Err(Error::Conflict(format!(
            "the tenant is {}; only an active or suspended tenant moves",
            tenant.status
        )));
    }
    let current = state.schema.target_version();
    if tenant.schema_version != current {
        return Err(Error::Conflict(format!(
            "the tenant is at schema version {}, not {current}; migrate it first",
            tenant.schema_version
        )));
    }
    let asked = json!({ "from": tenant.server, "to": to });
    let record = tenant.clone();
    runs::recorded(
        state,
        "move",
        tenant.id,
        tenant.slug.as_str(),
        asked,
        async move {
            let (moved, switch) = relocate(state, &record, &target, to).await?;
            let report = json!({
                "database": moved.database,
                "switch_ms": switch.as_millis() as u64,
            });
            Ok((moved, report))
        },
    )
    .await
}

async fn relocate(
    state: &AppState,
    tenant: &TenantRecord,
    target: &Server,
    to: &str,
) -> Result<(TenantRecord, Duration)> {
    let source = state.servers.of(tenant)?;
    let new = TenantRecord {
        server: to.to_owned(),
        database: target.database_name(tenant.id),
        ..tenant.clone()
    };
    // Room on both servers: each build lock's session (PostgreSQL) and one connection more.
    let _source_room = state
        .pools
        .reserve_for_control(tenant, source.provisioning_connections())
        .await?;
    let _target_room = state
        .pools
        .reserve_for_control(&new, target.provisioning_connections())
        .await?;
    let source_lock = source.lock_build(tenant).await?;
    let mut target_lock = target.lock_build(&new).await?;
    // Deleted, suspended or moved meanwhile: look again under the locks.
    let now = lifecycle::find(state, tenant.slug.as_str()).await?;
    if now.id != tenant.id || now.server != tenant.server || now.database != tenant.database {
        return Err(Error::Conflict(format!(
            "tenant {} changed while the move started; try again",
            tenant.slug
        )));
    }
    let copied = copy(state, tenant, &new, source, target, &mut target_lock).await;
    let switch = match copied {
        Ok(switch) => switch,
        Err((error, made)) => {
            if made {
                if let Err(cleanup) = target.drop_database(&new).await {
                    tracing::warn!(tenant = %tenant.slug, error = %cleanup, "could not remove the new copy of a failed move");
                }
            }
            return Err(error);
        }
    };
    state.pools.evict(tenant.id).await;
    tracing::info!(tenant = %tenant.slug, from = %tenant.server, to, "tenant moved; dropping the old copy");
    if state.registry.announces() {
        tokio::time::sleep(ANNOUNCED_GRACE).await;
    }
    if let Err(error) = source.drop_database(tenant).await {
        // The tenant is served from its new place; the fenced old copy only takes room.
        tracing::warn!(tenant = %tenant.slug, %error, "the old copy of a moved tenant was not dropped");
    }
    release(source_lock);
    release(target_lock);
    let moved = lifecycle::find(state, tenant.slug.as_str()).await?;
    let details = json!({ "from": tenant.server, "to": moved.server });
    audit::note_operator_action(state, &moved, "tenant.moved", details).await;
    Ok((moved, switch))
}

/// Lets a build lock go, its file removed (the tenant is whole where it is, and gone from
/// where it was).
fn release(lock: BuildLock) {
    lock.release_and_remove();
}

/// Steps 1 and 2: the new copy, filled online, then the final switch; answers how long the
/// switch held the old copy's writers off. On failure, says whether the new copy was made (and
/// is to be removed).
async fn copy(
    state: &AppState,
    tenant: &TenantRecord,
    new: &TenantRecord,
    source: &Server,
    target: &Server,
    target_lock: &mut BuildLock,
) -> Result<Duration, (Error, bool)> {
    // A database of that name already there is not this move's to replace: a failed move's
    // leftover, or another deployment's, or the tenant's own where two server names reach
    // one place. It is left alone.
    match target
        .create_database(new, &state.schema, target_lock)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return Err((
                Error::Conflict(format!(
                    "server {} already has a database {}; remove it if it is a failed move's",
                    new.server, new.database
                )),
                false,
            ))
        }
        Err(error) => return Err((error, false)),
    }
    fill_and_switch(state, tenant, new, source, target)
        .await
        .map_err(|error| (error, true))
}

async fn fill_and_switch(
    state: &AppState,
    tenant: &TenantRecord,
    new: &TenantRecord,
    source: &Server,
    target: &Server,
) -> Result<Duration> {
    let (from, to) = (Dialect::of(source), Dialect::of(target));
    super::migrate_tenant(target, new, &state.schema).await?;
    let into = target.connect_control(new, ControlRole::Tenant).await?;
    let old = source.connect_control(tenant, ControlRole::Admin).await?;
    let result = async {
        // Online: the bulk of the copy, while the tenant is served as usual.
        let first = snapshot::take(&old, from).await?;
        snapshot::replace(&into, to, &first).await?;
        // The switch: under the old copy's write lock, the last copy and the fence, committed
        // together; only then the registry.
        let mut conn = old.acquire().await?;
        let started = std::time::Instant::now();
        snapshot::begin_exclusive(&mut conn, from).await?;
        let fenced = async {
            let last = snapshot::read(&mut conn, from).await?;
            snapshot::replace(&into, to, &last).await?;
            snapshot::fence(&mut conn, from).await?;
            Ok(snapshot::row_count(&last))
        }
        .await;
        let rows = match fenced {
            Ok(rows) => rows,
            Err(error) => {
                let _ = snapshot::end(&mut conn, false).await;
                return Err(error);
            }
        };
        // Committed, the fence turns away every write to the old copy (503, to be retried),
        // the ones that waited on the lock too, until the registry names the new copy: no
        // write lands in a copy that no longer counts.
        snapshot::end(&mut conn, true).await?;
        match point_registry_at(state, tenant, new).await {
            Ok(()) => {
                let held = started.elapsed();
                tracing::info!(tenant = %tenant.slug, rows, switch_ms = held.as_millis() as u64, "tenant switched to its new copy");
                Ok(held)
            }
            Err(error) => {
                // Still served from the old copy: take the fence down again.
                let unfenced = async {
                    snapshot::begin_exclusive(&mut conn, from).await?;
                    let done = snapshot::unfence(&mut conn, from).await;
                    snapshot::end(&mut conn, done.is_ok()).await?;
                    done
                }
                .await;
                if let Err(stuck) = unfenced {
                    tracing::error!(tenant = %tenant.slug, error = %stuck, "the old copy stays fenced: its writes answer 503 until the move is run again");
                }
                Err(error)
            }
        }
    }
    .await;
    old.close().await;
    into.close().await;
    result
}

/// Points the registry row at the new copy (compare-and-set, with `tenant.moved` in the same
/// transaction). A write whose answer was lost may still have committed: the row says.
async fn point_registry_at(
    state: &AppState,
    tenant: &TenantRecord,
    new: &TenantRecord,
) -> Result<()> {
    let moved = Event::new(
        EventType::Moved,
        tenant,
        json!({
            "from": { "server": tenant.server, "database": tenant.database },
            "to": { "server": new.server, "database": new.database },
        }),
    );
    match state
        .registry
        .relocate(tenant, &new.server, &new.database, &[moved])
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Conflict(format!(
            "tenant {} was moved, or its keys rotated, by another run during the move; try again",
            tenant.slug
        ))),
        Err(error) => match state.registry.load(&tenant.slug).await {
            Ok(Some(now)) if now.server == new.server && now.database == new.database => Ok(()),
            _ => Err(error),
        },
    }
}
