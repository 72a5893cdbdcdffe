//! `GET /admin/v1/tenants/{slug}/export`: the tenant's data as JSON lines.

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    control,
    error::{ErrorBody, Result},
    http::extract::Path,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_tenant))
}

/// The tenant's data, for a customer who leaves: a header line (`format`, `version`, the tenant,
/// `exported_at`), then one `{"table", "row"}` line per row of settings, users, projects,
/// invitations, API tokens and the audit log, read in one snapshot. No password hashes, token
/// hashes or refresh tokens.
#[utoipa::path(get, path = "/admin/v1/tenants/{slug}/export", tag = "tenants", params(("slug" = String, Path, description = "Tenant slug")), responses(
    (status = 200, description = "JSON lines", content_type = "application/x-ndjson", body = String),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "The tenant is provisioning, migrating or being deleted", body = ErrorBody),
    (status = 503, description = "The tenant's database is unavailable", body = ErrorBody)))]
async fn export_tenant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response> {
    let lines = control::export(&state, &slug).await?;
    Ok(ndjson_download(
        &format!("{slug}.jsonl"),
        lines.join("\n") + "\n",
    ))
}

/// JSON lines to be saved as `filename` (an export, a backup).
pub(super) fn ndjson_download(filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}
