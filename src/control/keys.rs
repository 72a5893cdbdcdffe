//! Key rotation: a tenant's JWT key and database role password move to the next version of
//! their derivation under the current master key, one tenant or the whole fleet, with nothing
//! locked out on the way (see `secrets`, `identity::access_token` and `pool::connections` for
//! how the previous and the next credentials keep working meanwhile).

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::lifecycle;
use crate::{
    audit::{self, Actor},
    error::{Error, Result},
    state::AppState,
    tenant::{Status, TenantId, TenantRecord},
};

/// Tenants read from the registry at a time by a fleet rotation.
const PAGE: u32 = 500;
/// Tenants rotated at once by a fleet rotation when the caller does not say.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The most tenants a fleet rotation rotates at once.
pub const MAX_CONCURRENCY: usize = 64;

/// Which credentials a tenant uses: a master key (by id) and a version of the derivation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Credentials {
    /// The master key's id (a fingerprint, not the key).
    pub key: String,
    pub version: i64,
}

/// One tenant's rotation, as the admin API and the CLI show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeysRotated {
    pub slug: String,
    pub from: Credentials,
    pub to: Credentials,
}

/// Where the fleet's credentials stand.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyStatus {
    /// The current master key's id: what every rotation moves tenants to.
    pub key: String,
    /// The ids of `secrets.previous_master_keys`.
    pub previous_keys: Vec<String>,
    /// Tenants by the id of the master key their credentials use (`""`: a row from before key
    /// ids were recorded).
    pub tenants_by_key: BTreeMap<String, i64>,
    /// Tenants not on the current key yet: a previous key can be removed once this is 0.
    pub tenants_on_other_keys: i64,
}

/// What a fleet rotation did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct FleetReport {
    /// The master key tenants were moved to.
    pub key: String,
    /// Tenants the run found on another key (or on none recorded).
    pub tenants: u64,
    pub rotated: u64,
    /// Tenants left as they were for their status (provisioning, migrating, deleting).
    pub skipped: Vec<Skipped>,
    pub failed: Vec<Failed>,
    /// Tenants still on another key when the run ended (deleting ones not counted): run
    /// again once their status allows.
    pub remaining: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Skipped {
    pub slug: String,
    pub status: Status,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Failed {
    pub slug: String,
    pub error: String,
}

/// How one tenant of a fleet rotation ended, for progress lines.
pub enum Outcome<'a> {
    Rotated(&'a KeysRotated),
    Skipped(&'a Skipped),
    Failed(&'a Failed),
}

/// Rotates the keys of the tenant `slug`: `404 not_found` for no such tenant, `409 conflict`
/// for one that is provisioning, migrating or being deleted.
pub async fn rotate_keys(state: &AppState, slug: &str) -> Result<KeysRotated> {
    let tenant = lifecycle::find(state, slug).await?;
    rotate(state, &tenant).await
}

/// Statuses whose credentials are not moved: a role being made, a schema being changed (the
/// tenant is unavailable meanwhile anyway), a tenant going away.
fn refuses(status: Status) -> bool {
    matches!(
        status,
        Status::Provisioning | Status::Migrating | Status::Deleting
    )
}

/// The role's password first, then the registry: in between, routers still on the recorded
/// version log in with the next one (a refused login is retried with it), and tokens of the
/// next version verify already; once the registry moves, the previous version's tokens
/// verify until they expire. A run cut off in between leaves the role ahead of the registry,
/// which serves as well, and the next run finishes the move.
async fn rotate(state: &AppState, tenant: &TenantRecord) -> Result<KeysRotated> {
    if refuses(tenant.status) {
        return Err(Error::Conflict(format!(
            "the tenant is {}; its keys can be rotated once it is active or suspended",
            tenant.status
        )));
    }
    let from = Credentials {
        key: recorded_key(state, tenant),
        version: tenant.credentials_version,
    };
    let to = Credentials {
        key: state.secrets.key_id().to_owned(),
        version: tenant.credentials_version + 1,
    };
    let asked = json!({ "from": from, "to": to });
    let work = async move {
        let server = state.servers.of(tenant)?;
        {
            let _room = match server.rotation_connections() {
                0 => None,
                n => Some(state.pools.reserve_for_control(tenant, n).await?),
            };
            server.set_credentials(tenant, to.version).await?;
        }
        if !state.registry.advance_credentials(tenant, &to.key).await? {
            return Err(Error::Conflict(
                "the tenant's keys were rotated, or its database moved, by another run at the same moment; try again".into(),
            ));
        }
        tracing::info!(
            tenant = %tenant.slug,
            from_key = %from.key,
            from_version = from.version,
            to_key = %to.key,
            to_version = to.version,
            "tenant keys rotated"
        );
        let rotated = KeysRotated {
            slug: tenant.slug.to_string(),
            from,
            to,
        };
        record_in_audit_log(state, tenant.slug.as_str(), &rotated).await;
        Ok((rotated, json!({})))
    };
    super::runs::recorded(
        state,
        "rotate_keys",
        tenant.id,
        tenant.slug.as_str(),
        asked,
        work,
    )
    .await
}

/// The key id a tenant's row names; an empty one is the current key.
fn recorded_key(state: &AppState, tenant: &TenantRecord) -> String {
    match tenant.credentials_key.as_str() {
        "" => state.secrets.key_id().to_owned(),
        key => key.to_owned(),
    }
}

/// Writes `tenant.keys_rotated` to the tenant's own audit log, through a pool on the new
/// credentials; the rotation stands even if it cannot.
async fn record_in_audit_log(state: &AppState, slug: &str, rotated: &KeysRotated) {
    let written = async {
        let tenant = lifecycle::find(state, slug).await?;
        let mut conn = state.pools.get(&tenant).await?.acquire().await?;
        let details = json!({ "from": rotated.from, "to": rotated.to });
        audit::record(
            &mut conn,
            "tenant.keys_rotated",
            Actor::Operator,
            None,
            details,
        )
        .await
    };
    if let Err(error) = written.await {
        tracing::warn!(tenant = %slug, %error, "key rotation not written to the audit log");
    }
}

/// Moves every tenant not on the current master key to it (a row with no key recorded
/// included), `concurrency` tenants at a time, a page of the registry after another. A tenant
/// whose status refuses is skipped, one that fails is listed, and the rest go on; running it
/// again takes up what is left, as tenants already moved are on the current key.
pub async fn rotate_fleet(
    state: &AppState,
    concurrency: usize,
    mut progress: impl FnMut(Outcome<'_>),
) -> Result<FleetReport> {
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err(Error::field(
            "concurrency",
            format!("must be 1 to {MAX_CONCURRENCY}"),
        ));
    }
    let current = state.secrets.key_id().to_owned();
    let mut report = FleetReport {
        key: current.clone(),
        ..FleetReport::default()
    };
    let mut after: Option<TenantId> = None;
    loop {
        let page = state.registry.list(None, after, PAGE).await?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(|tenant| tenant.id);
        let behind: Vec<TenantRecord> = page
            .into_iter()
            .filter(|tenant| tenant.credentials_key != current)
            .collect();
        report.tenants += behind.len() as u64;
        // Owned tenants, so that the futures borrow nothing but `state`: the stream stays
        // `Send` for the admin API's background task.
        let mut runs = futures::stream::iter(behind.into_iter().map(|tenant| async move {
            if refuses(tenant.status) {
                return (tenant, Err(None));
            }
            let result = rotate(state, &tenant).await.map_err(Some);
            (tenant, result)
        }))
        .buffer_unordered(concurrency);
        while let Some((tenant, result)) = runs.next().await {
            match result {
                Ok(rotated) => {
                    report.rotated += 1;
                    progress(Outcome::Rotated(&rotated));
                }
                Err(None) => {
                    let skipped = Skipped {
                        slug: tenant.slug.to_string(),
                        status: tenant.status,
                    };
                    if tenant.status != Status::Deleting {
                        report.remaining += 1;
                    }
                    progress(Outcome::Skipped(&skipped));
                    report.skipped.push(skipped);
                }
                Err(Some(error)) => {
                    let failed = Failed {
                        slug: tenant.slug.to_string(),
                        error: error.detail(),
                    };
                    report.remaining += 1;
                    progress(Outcome::Failed(&failed));
                    report.failed.push(failed);
                }
            }
        }
        if !full {
            break;
        }
    }
    tracing::info!(
        key = %report.key,
        tenants = report.tenants,
        rotated = report.rotated,
        skipped = report.skipped.len(),
        failed = report.failed.len(),
        remaining = report.remaining,
        "fleet key rotation finished"
    );
    Ok(report)
}

/// Where the fleet's credentials stand (see [`KeyStatus`]).
pub async fn key_status(state: &AppState) -> Result<KeyStatus> {
    let current = state.secrets.key_id().to_owned();
    let tenants_by_key: BTreeMap<String, i64> = state
        .registry
        .tenants_per_key()
        .await?
        .into_iter()
        .collect();
    let tenants_on_other_keys = tenants_by_key
        .iter()
        .filter(|(key, _)| **key != current)
        .map(|(_, n)| n)
        .sum();
    Ok(KeyStatus {
        previous_keys: state
            .secrets
            .previous_key_ids()
            .map(str::to_owned)
            .collect(),
        key: current,
        tenants_by_key,
        tenants_on_other_keys,
    })
}
