//! API tokens: members create their own (shown once), admins see and revoke everyone's,
//! and a token can introspect itself.

use crate::http::fields;
use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::me::TenantSummary;
use crate::{
    audit, clock,
    error::{Error, ErrorBody, Result},
    http::{
        extract::{Json, Path, Query},
        pagination::{Page, PageQuery},
        Credential, CurrentUser, TenantDb,
    },
    identity::{validate_name, ApiToken, Role, Scope},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_api_tokens, create_api_token))
        .routes(routes!(introspect_api_token))
        .routes(routes!(revoke_api_token))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateApiToken {
    #[schema(schema_with = fields::name)]
    name: String,
    /// At least one of `projects:read`, `projects:write`, `members:read`, `members:write` (read
    /// as text, so another value is a `422` that names the field).
    #[schema(value_type = Vec<Scope>, min_items = 1)]
    scopes: Vec<String>,
    /// 1 to 3650; absent or null: the token does not expire.
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct CreatedApiToken {
    id: String,
    name: String,
    scopes: Vec<Scope>,
    /// `sk_...`, shown once.
    token: String,
    #[serde(serialize_with = "clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    expires_at: Option<i64>,
}

/// Create an API token for yourself (member+). The secret is shown once.
#[utoipa::path(post, path = "/v1/api-tokens", tag = "api-tokens", request_body = CreateApiToken, security(("bearer" = [])), responses(
    (status = 201, description = "Created", body = CreatedApiToken),
    (status = 403, description = "Role too low, or an API token was used", body = ErrorBody),
    (status = 422, description = "Unknown scope, no scope, or a bad expiry", body = ErrorBody)))]
async fn create_api_token(
    State(state): State<AppState>,
    db: TenantDb,
    current: CurrentUser,
    Json(body): Json<CreateApiToken>,
) -> Result<(StatusCode, Json<CreatedApiToken>)> {
    let user = current.require(Role::Member)?;
    let name = validate_name("name", &body.name)?;
    if body.scopes.is_empty() {
        return Err(Error::field("scopes", "needs at least one scope"));
    }
    let mut scopes = body
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| Error::field("scopes", m))?;
    scopes.sort();
    scopes.dedup();
    state.usage.ensure_space(&db).await?;
    let days = match body.expires_in_days {
        None => None,
        Some(days @ 1..=fields::API_TOKEN_MAX_DAYS) => Some(days as u32),
        Some(_) => return Err(Error::field("expires_in_days", "must be from 1 to 3650")),
    };
    let (token, raw) = state
        .api_tokens
        .create(&mut *db.conn().await?, &user.id, &name, &scopes, days)
        .await?;
    let details = json!({ "name": token.name, "scopes": token.scopes, "api_token_id": token.id });
    audit::record(
        &mut *db.conn().await?,
        "api_token.created",
        current.actor(),
        Some(&token.id),
        details,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiToken {
            id: token.id,
            name: token.name,
            scopes: token.scopes,
            token: raw,
            expires_at: token.expires_at,
        }),
    ))
}

/// Live API tokens without secrets: your own, or everyone's for admins.
#[utoipa::path(get, path = "/v1/api-tokens", tag = "api-tokens", params(PageQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of tokens", body = Page<ApiToken>),
    (status = 403, description = "Role too low", body = ErrorBody)))]
async fn list_api_tokens(
    State(state): State<AppState>,
    db: TenantDb,
    current: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<ApiToken>>> {
    let user = current.require(Role::Member)?;
    let page = query.parse()?;
    let only = (!user.role.at_least(Role::Admin)).then_some(user.id.as_str());
    let tokens = state
        .api_tokens
        .list(
            &mut *db.conn().await?,
            only,
            page.after.as_deref(),
            page.limit + 1,
        )
        .await?;
    Ok(Json(Page::from_rows(tokens, page.limit, |t| t.id.clone())))
}

/// Revoke an API token: your own, or anyone's for admins; another's is not found. Takes effect at once.
#[utoipa::path(delete, path = "/v1/api-tokens/{id}", tag = "api-tokens", params(("id" = String, Path, description = "Token id")), security(("bearer" = [])), responses(
    (status = 204, description = "Revoked"),
    (status = 404, description = "No such live token of yours", body = ErrorBody)))]
async fn revoke_api_token(
    State(state): State<AppState>,
    db: TenantDb,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let user = current.require(Role::Member)?;
    let only = (!user.role.at_least(Role::Admin)).then_some(user.id.as_str());
    if !state
        .api_tokens
        .revoke(&mut *db.conn().await?, &id, only)
        .await?
    {
        return Err(Error::not_found("API token"));
    }
    audit::record(
        &mut *db.conn().await?,
        "api_token.revoked",
        current.actor(),
        Some(&id),
        json!({ "api_token_id": id }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct Introspection {
    id: String,
    name: String,
    scopes: Vec<Scope>,
    tenant: TenantSummary,
    #[serde(serialize_with = "clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    expires_at: Option<i64>,
    #[serde(serialize_with = "clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    last_used_at: Option<i64>,
}

/// Describe the API token used as the bearer.
#[utoipa::path(get, path = "/v1/api-tokens/introspect", tag = "api-tokens", security(("bearer" = [])), responses(
    (status = 200, description = "The token", body = Introspection),
    (status = 401, description = "Invalid, expired, revoked or foreign token", body = ErrorBody),
    (status = 403, description = "The bearer is not an API token", body = ErrorBody)))]
async fn introspect_api_token(db: TenantDb, current: CurrentUser) -> Result<Json<Introspection>> {
    let Credential::ApiToken(token) = &current.credential else {
        return Err(Error::Forbidden(
            "introspection needs an API token as the bearer".into(),
        ));
    };
    Ok(Json(Introspection {
        id: token.id.clone(),
        name: token.name.clone(),
        scopes: token.scopes.clone(),
        tenant: TenantSummary::of(&db),
        expires_at: token.expires_at,
        last_used_at: token.last_used_at,
    }))
}
