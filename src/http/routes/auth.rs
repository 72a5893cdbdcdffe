//! Sign-up, login, refresh and logout, all inside the resolved tenant's own database.

use crate::http::fields;
use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    audit::{self, Actor},
    error::{Error, ErrorBody, Result},
    http::{extract::Json, TenantDb},
    identity::{validate_name, validate_password, Email, NewUser, Role, User},
    state::AppState,
    usage::{self, Counted},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignupBody {
    #[schema(schema_with = fields::email)]
    email: String,
    #[schema(schema_with = fields::password)]
    password: String,
    /// Absent or null: the part of the email before `@`.
    #[schema(schema_with = fields::optional_name)]
    name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[schema(schema_with = fields::login_email)]
    email: String,
    #[schema(schema_with = fields::login_password)]
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// What signup, login, refresh and invitation acceptance answer.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// Starts a session (a new refresh family) for `user` in the resolved tenant.
pub async fn start_session(state: &AppState, db: &TenantDb, user: User) -> Result<TokenResponse> {
    let refresh_token = state
        .refresh_tokens
        .start(&mut *db.conn().await?, &user.id)
        .await?;
    token_response(state, db, user, refresh_token)
}

fn token_response(
    state: &AppState,
    db: &TenantDb,
    user: User,
    refresh_token: String,
) -> Result<TokenResponse> {
    let ttl = state.access_tokens.ttl_secs();
    let (access_token, _claims) = state.access_tokens.issue(&db.tenant, &user, ttl)?;
    Ok(TokenResponse {
        user,
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: ttl,
    })
}

/// Create an account in this tenant (plans with `open_signup` only); role `member`.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = SignupBody, responses(
    (status = 201, description = "Signed up and signed in", body = TokenResponse),
    (status = 403, description = "Sign-up is closed on this tenant's plan", body = ErrorBody),
    (status = 409, description = "The email already has an account here", body = ErrorBody),
    (status = 422, description = "Invalid email, password or name", body = ErrorBody)))]
async fn signup(
    State(state): State<AppState>,
    db: TenantDb,
    Json(body): Json<SignupBody>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    let open = state
        .plans
        .get(&db.tenant.plan)
        .is_some_and(|plan| plan.settings.open_signup);
    if !open {
        return Err(Error::Forbidden(
            "sign-up is closed for this tenant; ask an admin for an invitation".into(),
        ));
    }
    let email = Email::parse(&body.email).map_err(|m| Error::field("email", m))?;
    validate_password(&body.password)?;
    let name = match &body.name {
        Some(name) => validate_name("name", name)?,
        None => email.local_part().to_owned(),
    };
    state.usage.ensure_space(&db).await?;
    let password_hash = state.passwords.hash(db.tenant.id, &body.password).await?;
    let user = {
        let mut conn = db.conn().await?;
        let mut tx = conn.begin().await?;
        let created = async {
            usage::ensure_room(&state, &db.tenant, &mut tx, Counted::Users).await?;
            User::create(
                &mut tx,
                NewUser {
                    email: &email,
                    name: &name,
                    password_hash: &password_hash,
                    role: Role::Member,
                },
            )
            .await
        }
        .await;
        // Rolled back at once on a failure (an email taken): the quota's lock goes with it.
        tx.finish(created).await?
    };
    tracing::info!(user = %user.id, "signed up");
    audit::record(
        &mut *db.conn().await?,
        "auth.signed_up",
        Actor::User(&user.id),
        Some(&user.id),
        json!({ "email": user.email }),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(start_session(&state, &db, user).await?),
    ))
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginBody, responses(
    (status = 200, description = "Signed in", body = TokenResponse),
    (status = 401, description = "Wrong email or password (`invalid_credentials`)", body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    db: TenantDb,
    Json(body): Json<LoginBody>,
) -> Result<Json<TokenResponse>> {
    if body.password.chars().count() > 1024 || body.email.chars().count() > 254 {
        return Err(Error::Validation {
            message: "email or password is too long".into(),
            fields: Default::default(),
        });
    }
    // An unknown or malformed email costs the same argon2 work as a wrong password.
    let found = match Email::parse(&body.email) {
        Ok(email) => User::with_hash_by_email(&mut *db.conn().await?, &email).await?,
        Err(_) => None,
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    // Hashing takes tens of milliseconds: the tenant's other requests may use the connection.
    db.release().await;
    let verified = state
        .passwords
        .verify(db.tenant.id, &body.password, hash.as_deref())
        .await?;
    match user {
        Some(user) if verified => {
            tracing::info!(user = %user.id, "signed in");
            audit::record_or_log(
                &mut *db.conn().await?,
                "auth.login_succeeded",
                Actor::User(&user.id),
                Some(&user.id),
                json!({}),
            )
            .await;
            Ok(Json(start_session(&state, &db, user).await?))
        }
        user => {
            tracing::info!("sign-in failed");
            // The attempted email is kept (length-capped) so admins can see who is being tried.
            let attempted: String = body.email.trim().chars().take(254).collect();
            let target = user.as_ref().map(|u| u.id.as_str());
            audit::record_or_log(
                &mut *db.conn().await?,
                "auth.login_failed",
                Actor::Anonymous,
                target,
                json!({ "email": attempted }),
            )
            .await;
            Err(Error::InvalidCredentials)
        }
    }
}

/// Trade a refresh token for a new pair; the old one is spent, and reusing it revokes its family.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshBody, responses(
    (status = 200, description = "A new token pair", body = TokenResponse),
    (status = 401, description = "Unknown, spent, revoked or expired refresh token", body = ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    db: TenantDb,
    Json(body): Json<RefreshBody>,
) -> Result<Json<TokenResponse>> {
    let (user_id, next) = state
        .refresh_tokens
        .rotate(&mut *db.conn().await?, &body.refresh_token)
        .await?;
    let user = User::by_id(&mut *db.conn().await?, &user_id)
        .await?
        .ok_or(Error::Unauthorized("this account no longer exists"))?;
    Ok(Json(token_response(&state, &db, user, next)?))
}

/// Revoke the refresh token's family (no bearer needed).
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", request_body = RefreshBody, responses(
    (status = 204, description = "Signed out"),
    (status = 401, description = "Unknown refresh token", body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    db: TenantDb,
    Json(body): Json<RefreshBody>,
) -> Result<StatusCode> {
    state
        .refresh_tokens
        .revoke(&mut *db.conn().await?, &body.refresh_token)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
