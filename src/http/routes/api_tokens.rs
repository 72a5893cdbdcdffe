//! API tokens: members create their own (shown once), admins see and revoke everyone's,
//! and a token can introspect itself.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::{delete, get},
    Router,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    audit, clock,
    error::{Error, Result},
    http::{
        extract::{Credential, CurrentUser, Json, Query, TenantDb},
        pagination::{Page, PageQuery},
    },
    identity::{validate_name, ApiToken, Role, Scope},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/api-tokens",
            get(list_api_tokens).post(create_api_token),
        )
        .route("/v1/api-tokens/introspect", get(introspect_api_token))
        .route("/v1/api-tokens/{id}", delete(revoke_api_token))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiToken {
    name: String,
    scopes: Vec<String>,
    expires_in_days: Option<i64>,
}

#[derive(Serialize)]
struct CreatedApiToken {
    id: String,
    name: String,
    scopes: Vec<Scope>,
    token: String,
    #[serde(serialize_with = "clock::as_rfc3339_opt")]
    expires_at: Option<i64>,
}

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
    let days = match body.expires_in_days {
        None => None,
        Some(days @ 1..=3650) => Some(days as u32),
        Some(_) => return Err(Error::field("expires_in_days", "must be from 1 to 3650")),
    };
    let (token, raw) = state
        .api_tokens
        .create(&db.pool, &user.id, &name, &scopes, days)
        .await?;
    let details = json!({ "name": token.name, "scopes": token.scopes, "api_token_id": token.id });
    audit::record(
        &db.pool,
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

/// Members see their own tokens; admins see everyone's.
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
        .list(&db.pool, only, page.after.as_deref(), page.limit + 1)
        .await?;
    Ok(Json(Page::from_rows(tokens, page.limit, |t| t.id.clone())))
}

/// A member revokes their own tokens, an admin anyone's; another's token is not found.
async fn revoke_api_token(
    State(state): State<AppState>,
    db: TenantDb,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let user = current.require(Role::Member)?;
    let only = (!user.role.at_least(Role::Admin)).then_some(user.id.as_str());
    if !state.api_tokens.revoke(&db.pool, &id, only).await? {
        return Err(Error::not_found("API token"));
    }
    audit::record(
        &db.pool,
        "api_token.revoked",
        current.actor(),
        Some(&id),
        json!({ "api_token_id": id }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn introspect_api_token(
    db: TenantDb,
    current: CurrentUser,
) -> Result<Json<serde_json::Value>> {
    let Credential::ApiToken(token) = &current.credential else {
        return Err(Error::Forbidden(
            "introspection needs an API token as the bearer".into(),
        ));
    };
    Ok(Json(json!({
        "id": token.id,
        "name": token.name,
        "scopes": token.scopes,
        "tenant": { "id": db.tenant.id, "slug": db.tenant.slug, "name": db.tenant.name },
        "user": { "id": current.user.id, "email": current.user.email, "role": current.user.role },
        "expires_at": token.expires_at.map(clock::rfc3339),
        "last_used_at": token.last_used_at.map(clock::rfc3339),
    })))
}
