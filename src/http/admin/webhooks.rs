//! `/admin/v1/webhooks/deliveries`: the webhook outbox, for an operator to see what is pending,
//! stuck or given up, and to send a given-up delivery again.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{Error, ErrorBody, Result},
    http::{
        extract::{Json, Path, Query},
        pagination::{Page, PageQuery},
    },
    registry::{Delivery, DeliveryStatus},
    state::AppState,
    tenant::Slug,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(retry_delivery))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only deliveries with this status.
    #[param(value_type = Option<DeliveryStatus>)]
    status: Option<String>,
    /// Only events about the tenant with this slug.
    tenant: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Webhook deliveries, oldest first: one per event and receiver.
#[utoipa::path(get, path = "/admin/v1/webhooks/deliveries", tag = "webhooks", params(ListQuery), responses(
    (status = 200, description = "A page of deliveries", body = Page<Delivery>),
    (status = 422, description = "Bad status, tenant, limit or cursor", body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<Delivery>>> {
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(
            raw.parse::<DeliveryStatus>()
                .map_err(|m| Error::field("status", m))?,
        ),
    };
    let tenant = match query.tenant.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(
            Slug::parse_shape(raw).map_err(|_| Error::field("tenant", "is not a tenant slug"))?,
        ),
    };
    let deliveries = state
        .registry
        .list_deliveries(
            status,
            tenant.as_ref(),
            page.after.as_deref(),
            page.limit + 1,
        )
        .await?;
    Ok(Json(Page::from_rows(deliveries, page.limit, |d| {
        d.id.clone()
    })))
}

/// One webhook delivery.
#[utoipa::path(get, path = "/admin/v1/webhooks/deliveries/{id}", tag = "webhooks", params(("id" = String, Path, description = "Delivery id")), responses(
    (status = 200, description = "The delivery", body = Delivery),
    (status = 404, description = "No such delivery", body = ErrorBody)))]
async fn get_delivery(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Delivery>> {
    Ok(Json(find(&state, &id).await?))
}

/// Send a `failed` delivery again: back to `pending`, due now, its attempts counted afresh.
/// It goes before any later event of its tenant still pending for that receiver.
#[utoipa::path(post, path = "/admin/v1/webhooks/deliveries/{id}/retry", tag = "webhooks", params(("id" = String, Path, description = "Delivery id")), responses(
    (status = 200, description = "The delivery, pending again", body = Delivery),
    (status = 404, description = "No such delivery", body = ErrorBody),
    (status = 409, description = "Not failed (pending or delivered)", body = ErrorBody)))]
async fn retry_delivery(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Delivery>> {
    let delivery = find(&state, &id).await?;
    match state.registry.retry_delivery(&delivery.id).await? {
        Some(pending) => Ok(Json(pending)),
        None => {
            let now = find(&state, &id).await?;
            Err(Error::Conflict(format!(
                "the delivery is {}, not failed",
                now.status.as_str()
            )))
        }
    }
}

/// The delivery with this id; `404 not_found` for anything else, a malformed id included.
async fn find(state: &AppState, id: &str) -> Result<Delivery> {
    let id = uuid::Uuid::parse_str(id)
        .map_err(|_| Error::not_found("delivery"))?
        .hyphenated()
        .to_string();
    state
        .registry
        .find_delivery(&id)
        .await?
        .ok_or_else(|| Error::not_found("delivery"))
}
