//! Invitations: admins invite an email with a role; the invitee accepts with the token and
//! becomes a user of this tenant only.

use crate::http::fields;
use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::{start_session, TokenResponse};
use crate::{
    audit::{self, Actor},
    error::{Error, ErrorBody, Result},
    http::{extract::Json, CurrentUser, TenantDb},
    identity::{validate_name, validate_password, Email, Invitation, Role, User},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_invitation))
        .routes(routes!(accept_invitation))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateInvitation {
    #[schema(schema_with = fields::email)]
    email: String,
    /// Read as text, so another value is a `422` that names the field.
    #[schema(value_type = Role)]
    role: String,
}

#[derive(Serialize, ToSchema)]
struct CreatedInvitation {
    #[serde(flatten)]
    invitation: Invitation,
    /// Shown once.
    token: String,
}

/// Invite an email with a role (admin+; only an owner invites an owner). The token is shown once.
#[utoipa::path(post, path = "/v1/invitations", tag = "invitations", request_body = CreateInvitation, security(("bearer" = [])), responses(
    (status = 201, description = "Invited", body = CreatedInvitation),
    (status = 403, description = "Role too low", body = ErrorBody),
    (status = 409, description = "Already a member", body = ErrorBody),
    (status = 422, description = "Invalid email or role", body = ErrorBody)))]
async fn create_invitation(
    db: TenantDb,
    current: CurrentUser,
    Json(body): Json<CreateInvitation>,
) -> Result<(StatusCode, Json<CreatedInvitation>)> {
    let actor = current.require(Role::Admin)?;
    let email = Email::parse(&body.email).map_err(|m| Error::field("email", m))?;
    let role: Role = body
        .role
        .parse()
        .map_err(|m: &str| Error::field("role", m))?;
    if role == Role::Owner && actor.role != Role::Owner {
        return Err(Error::Forbidden("only an owner invites an owner".into()));
    }
    if User::with_hash_by_email(&mut *db.conn().await?, &email)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(
            "this email is already a member of this tenant".into(),
        ));
    }
    db.state().usage.ensure_space(&db).await?;
    let (invitation, token) =
        Invitation::create(&mut *db.conn().await?, &email, role, &actor.id).await?;
    let details = json!({ "email": email, "role": role, "invitation_id": invitation.id });
    audit::record(
        &mut *db.conn().await?,
        "invitation.created",
        current.actor(),
        Some(&invitation.id),
        details,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedInvitation { invitation, token }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AcceptInvitation {
    token: String,
    #[schema(schema_with = fields::password)]
    password: String,
    /// Absent or null: the part of the invited email before `@`.
    #[schema(schema_with = fields::optional_name)]
    name: Option<String>,
}

/// Accept an invitation: creates the account in this tenant and signs it in.
#[utoipa::path(post, path = "/v1/invitations/accept", tag = "invitations", request_body = AcceptInvitation, responses(
    (status = 201, description = "Account created", body = TokenResponse),
    (status = 401, description = "Spent, expired or foreign invitation", body = ErrorBody),
    (status = 409, description = "The email has an account here already", body = ErrorBody),
    (status = 422, description = "Invalid password or name", body = ErrorBody)))]
async fn accept_invitation(
    State(state): State<AppState>,
    db: TenantDb,
    Json(body): Json<AcceptInvitation>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    validate_password(&body.password)?;
    let name = body
        .name
        .as_deref()
        .map(|n| validate_name("name", n))
        .transpose()?;
    // Checked before hashing, so a bogus token costs no argon2 work.
    let invitation = Invitation::find_open(&mut *db.conn().await?, &body.token).await?;
    let name = name.unwrap_or_else(|| {
        invitation
            .email
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    // Hashing takes tens of milliseconds: the tenant's other requests may use the connection.
    db.release().await;
    state.usage.ensure_space(&db).await?;
    let max_users = crate::usage::limit(&state, &db.tenant, crate::usage::Counted::Users);
    let password_hash = state.passwords.hash(db.tenant.id, &body.password).await?;
    let user = Invitation::accept(
        &mut *db.conn().await?,
        &body.token,
        &name,
        &password_hash,
        max_users,
    )
    .await?;
    let details = json!({ "email": user.email, "role": user.role, "invitation_id": invitation.id });
    audit::record(
        &mut *db.conn().await?,
        "invitation.accepted",
        Actor::User(&user.id),
        Some(&user.id),
        details,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(start_session(&state, &db, user).await?),
    ))
}
