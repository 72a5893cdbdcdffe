//! A tenant's life after provisioning: look up, list, suspend, resume, domains, delete. Each
//! registry write evicts this router's cache at once; other routers notice within the TTL.

use serde_json::json;

use crate::{
    audit,
    error::{Error, Result},
    state::AppState,
    tenant::{Domain, Slug, Status, TenantId, TenantRecord},
    webhooks::{Event, EventType},
};

/// The tenant with this slug, straight from the registry; `404 not_found` otherwise.
pub async fn find(state: &AppState, slug: &str) -> Result<TenantRecord> {
    let slug = Slug::parse_shape(slug).map_err(|_| Error::not_found("tenant"))?;
    state
        .registry
        .load(&slug)
        .await?
        .ok_or_else(|| Error::not_found("tenant"))
}

pub async fn list(
    state: &AppState,
    status: Option<Status>,
    after: Option<TenantId>,
    limit: u32,
) -> Result<Vec<TenantRecord>> {
    state.registry.list(status, after, limit).await
}

/// Every tenant, oldest first, read page by page.
pub async fn list_all(state: &AppState) -> Result<Vec<TenantRecord>> {
    const PAGE: u32 = 1000;
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = state.registry.list(None, after, PAGE).await?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(|tenant| tenant.id);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

pub async fn suspend(state: &AppState, slug: &str) -> Result<TenantRecord> {
    transition(state, slug, Status::Active, Status::Suspended).await
}

pub async fn resume(state: &AppState, slug: &str) -> Result<TenantRecord> {
    transition(state, slug, Status::Suspended, Status::Active).await
}

/// Moves `from` -> `to`; already at `to` is a no-op; any other state is `409 conflict`.
async fn transition(
    state: &AppState,
    slug: &str,
    from: Status,
    to: Status,
) -> Result<TenantRecord> {
    let tenant = find(state, slug).await?;
    if tenant.status == to {
        return Ok(tenant);
    }
    if tenant.status != from {
        return Err(Error::Conflict(format!(
            "the tenant is {}, not {from}",
            tenant.status
        )));
    }
    let kind = if to == Status::Suspended {
        EventType::Suspended
    } else {
        EventType::Resumed
    };
    // Recorded with the status change, in its transaction: no change without its event.
    let event = Event::new(kind, &tenant, json!({ "from": from, "to": to }));
    if !state
        .registry
        .transition_noting(&tenant, &[from], to, &[event])
        .await?
    {
        // Something else changed it between our read and our write (a migration, say).
        let now = find(state, slug).await?;
        return Err(Error::Conflict(format!(
            "the tenant is {}, not {from}",
            now.status
        )));
    }
    tracing::info!(tenant = %tenant.slug, status = %to, "tenant status changed");
    // The tenant's own audit log says so too; the status change stands even if it cannot.
    let action = if to == Status::Suspended {
        "tenant.suspended"
    } else {
        "tenant.resumed"
    };
    audit::note_operator_action(state, &tenant, action, json!({ "from": from, "to": to })).await;
    find(state, slug).await
}

pub async fn add_domain(state: &AppState, slug: &str, domain: &str) -> Result<TenantRecord> {
    let tenant = find(state, slug).await?;
    let domain = Domain::parse(domain, &state.settings.resolve.base_domain)
        .map_err(|m| Error::field("domain", m))?;
    state.registry.add_domain(&tenant, domain.as_str()).await?;
    find(state, slug).await
}

pub async fn remove_domain(state: &AppState, slug: &str, domain: &str) -> Result<()> {
    let tenant = find(state, slug).await?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if !state.registry.remove_domain(&tenant, &domain).await? {
        return Err(Error::not_found("domain"));
    }
    Ok(())
}

/// Marks the tenant `deleting` (requests get 404 from now on), closes its pool, removes its
/// database, then its registry row (with `tenant.deleted` in the same transaction). A failure
/// part-way leaves `deleting`; deleting again finishes.
/// Holds the tenant's build lock throughout: a provisioning run still building it (one whose
/// client gave up, say) is waited out with `409`, never raced.
pub async fn delete(state: &AppState, slug: &str) -> Result<()> {
    let tenant = find(state, slug).await?;
    let server = state.servers.of(&tenant)?;
    // The lock's session and the drop's own connection, counted in the server's budget.
    let _room = state
        .pools
        .reserve_for_control(&tenant, server.deletion_connections())
        .await?;
    let _building = server.lock_build(&tenant).await?;
    // Moved meanwhile (a move holds this lock until it is done): its database is elsewhere now.
    let now = find(state, slug).await?;
    if now.server != tenant.server || now.database != tenant.database {
        return Err(Error::Conflict(format!(
            "tenant {} moved to server {} meanwhile; delete it again",
            tenant.slug, now.server
        )));
    }
    state
        .registry
        .set_status(&tenant, Status::Deleting, None)
        .await?;
    state.pools.evict(tenant.id).await;
    server.forget_tenant(&tenant).await?;
    let event = Event::new(EventType::Deleted, &tenant, json!({}));
    state.registry.delete_noting(&tenant, &[event]).await?;
    tracing::info!(tenant = %tenant.slug, id = %tenant.id, "tenant deleted");
    Ok(())
}
