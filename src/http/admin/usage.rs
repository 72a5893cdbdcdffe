//! `GET /admin/v1/usage`: every tenant's usage, sorted by any of its measures.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    control,
    error::{Error, ErrorBody, Result},
    http::extract::{Json, Query},
    registry::{TenantUsage, UsageSort},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(fleet_usage))
}

/// Tenants listed at most.
const MAX_LISTED: u32 = 1000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UsageQuery {
    /// `requests` (the default), `users`, `projects` or `database_bytes`: largest first,
    /// tenants never measured last.
    #[param(value_type = Option<UsageSort>, inline)]
    sort: Option<String>,
    /// Tenants listed, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// Every tenant's usage: requests served (by every router) and its last measured users,
/// projects and database size (each `GET .../stats` measures, as does `silo tenant usage
/// --measure`), sorted largest first: which tenants to look at, or to move.
#[utoipa::path(get, path = "/admin/v1/usage", tag = "tenants", params(UsageQuery), responses(
    (status = 200, description = "Tenants, largest first", body = [TenantUsage]),
    (status = 422, description = "Bad sort or limit", body = ErrorBody)))]
async fn fleet_usage(
    State(state): State<AppState>,
    Query(query): Query<UsageQuery>,
) -> Result<Json<Vec<TenantUsage>>> {
    let sort = match query.sort.as_deref() {
        None | Some("") => UsageSort::Requests,
        Some(raw) => UsageSort::parse(raw).ok_or_else(|| {
            Error::field(
                "sort",
                format!("must be one of {}", UsageSort::NAMES.join(", ")),
            )
        })?,
    };
    let limit = match query.limit.as_deref() {
        None => 100,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_LISTED).contains(&n) => n,
            _ => {
                return Err(Error::field(
                    "limit",
                    "must be a whole number from 1 to 1000",
                ))
            }
        },
    };
    Ok(Json(control::usage(&state, sort, limit).await?))
}
