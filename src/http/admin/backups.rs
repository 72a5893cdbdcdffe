//! `/admin/v1/tenants/{slug}/backup`, `/restore`, `/move` and `/runs`: a tenant's database as a
//! backup file, a backup file back into a tenant, the database moved to another server, and the
//! lifecycle runs recorded for it.

use axum::{body::Body, extract::State, http::StatusCode, response::Response, Json};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    clock, control,
    error::{Error, ErrorBody, Result},
    http::extract::Path,
    registry::LifecycleRun,
    state::AppState,
    tenant::TenantRecord,
};

/// The largest backup file the admin API takes; larger ones restore through the CLI, which
/// reads the file itself.
pub const RESTORE_BODY_LIMIT: usize = 256 * 1024 * 1024;

/// Runs listed at most.
const RUNS_LISTED: u32 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(backup_tenant))
        .routes(routes!(restore_tenant))
        .routes(routes!(move_tenant))
        .routes(routes!(tenant_runs))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MoveTenant {
    /// A server of this configuration (`[servers.<name>]`) other than the tenant's own.
    to: String,
}

/// Moves the tenant's database to another server: copied online, then switched in one short
/// step during which its writes wait (or answer `503` with `Retry-After`) and its reads go on;
/// verified, announced to every router, and the old copy dropped. A failure at any step leaves
/// the tenant served from where it was. Recorded as a run.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/move", tag = "tenants", params(("slug" = String, Path, description = "Tenant slug")),
    request_body = MoveTenant,
    responses(
    (status = 200, description = "Moved", body = TenantRecord),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "Already there, not active or suspended, behind the schema, or being changed by another run", body = ErrorBody),
    (status = 422, description = "Unknown server", body = ErrorBody),
    (status = 503, description = "A database server is unavailable", body = ErrorBody)))]
async fn move_tenant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    crate::http::extract::Json(body): crate::http::extract::Json<MoveTenant>,
) -> Result<Json<TenantRecord>> {
    let work_state = state.clone();
    let work = async move { control::move_tenant(&work_state, &slug, &body.to).await };
    Ok(Json(state.background.run(work).await??))
}

/// A backup of the tenant's database, taken online in one consistent snapshot: every table and
/// column (password and token hashes included: keep it as safe as the database), as JSON lines
/// ending with a checksum line. Recorded as a run.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/backup", tag = "tenants", params(("slug" = String, Path, description = "Tenant slug")), responses(
    (status = 200, description = "The backup file", content_type = "application/x-ndjson", body = String),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "The tenant is provisioning, migrating or being deleted", body = ErrorBody),
    (status = 503, description = "The tenant's database is unavailable", body = ErrorBody)))]
async fn backup_tenant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response> {
    let backup = control::backup(&state, &slug).await?;
    let name = format!(
        "{slug}-{}.silo-backup.jsonl",
        clock::rfc3339(backup.taken_at).replace(':', "")
    );
    Ok(super::export::ndjson_download(&name, backup.to_file()))
}

/// Restores a backup file (the request body, as `backup` wrote it) into the tenant it was
/// taken of, which must be suspended (its data is replaced whole, in one transaction; it stays
/// suspended), or under a slug nobody has (a new tenant with its own id, role and keys, without
/// the backup's sessions, API tokens and invitations). Recorded as a run.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/restore", tag = "tenants", params(("slug" = String, Path, description = "The tenant to restore into, or a new slug")),
    request_body(content = String, content_type = "application/x-ndjson", description = "A backup file"),
    responses(
    (status = 200, description = "Restored into the tenant", body = TenantRecord),
    (status = 201, description = "Restored as a new tenant", body = TenantRecord),
    (status = 400, description = "Not a whole backup file", body = ErrorBody),
    (status = 409, description = "The tenant is not suspended, or the backup is another tenant's or of a newer schema", body = ErrorBody),
    (status = 413, description = "Larger than 256 MiB", body = ErrorBody),
    (status = 422, description = "Not a valid slug, or the backup's plan is unknown here", body = ErrorBody),
    (status = 503, description = "The tenant's database is unavailable", body = ErrorBody)))]
async fn restore_tenant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<TenantRecord>)> {
    let bytes = axum::body::to_bytes(body, RESTORE_BODY_LIMIT)
        .await
        .map_err(|_| Error::PayloadTooLarge)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::BadRequest("the backup file is not valid: not UTF-8".into()))?;
    let backup = control::Backup::parse(text)?;
    let existed = control::find(&state, &slug).await.is_ok();
    let work_state = state.clone();
    let work = async move { control::restore(&work_state, &slug, backup).await };
    let tenant = state.background.run(work).await??;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(tenant)))
}

/// The lifecycle runs recorded for the tenant (backups, restores, clones, moves, key rotations), newest
/// first, at most 100.
#[utoipa::path(get, path = "/admin/v1/tenants/{slug}/runs", tag = "tenants", params(("slug" = String, Path, description = "Tenant slug")), responses(
    (status = 200, description = "The tenant's runs", body = [LifecycleRun]),
    (status = 404, description = "No such tenant", body = ErrorBody)))]
async fn tenant_runs(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<Vec<LifecycleRun>>> {
    Ok(Json(control::runs(&state, &slug, RUNS_LISTED).await?))
}
