//! The one error type. Each variant is an API error code; `IntoResponse` gives the JSON shape
//! `{"error": {"code", "message", "fields"?}}`. Internal causes are logged whole and never sent.

use std::collections::BTreeMap;

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;

/// Field name to a sentence about what is wrong with it.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("the request names more than one tenant")]
    TenantConflict,
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("this tenant is suspended")]
    TenantSuspended,
    /// A plan quota (`max_users`, `max_projects`, `max_database_bytes`) is reached.
    #[error("the tenant's plan allows {what}; this would go beyond it")]
    QuotaExceeded { quota: &'static str, what: String },
    #[error("{0}")]
    NotFound(String),
    #[error("no tenant matches this request")]
    TenantNotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("too many requests; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("this tenant is unavailable right now; retry shortly")]
    TenantUnavailable { retry_after: u64 },
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request took too long")]
    Timeout,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The body of every error response: `{"error": {"code", "message", "fields"?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code such as `validation_failed` or `tenant_not_found`.
    pub code: String,
    /// One sentence for a person.
    pub message: String,
    /// For `validation_failed`: field name to what is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<FieldErrors>,
    /// For `quota_exceeded`: the plan quota reached (`max_users`, `max_projects` or
    /// `max_database_bytes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
}

impl Error {
    /// A `validation_failed` error about one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Error::Validation {
            message: format!("{field}: {message}"),
            fields: BTreeMap::from([(field.to_owned(), message)]),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Error::NotFound(format!("{what} not found"))
    }

    /// Status and code in one place.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::TenantConflict => (StatusCode::BAD_REQUEST, "tenant_conflict"),
            Error::QuotaExceeded { .. } => (StatusCode::FORBIDDEN, "quota_exceeded"),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::TenantSuspended => (StatusCode::FORBIDDEN, "tenant_suspended"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::TenantNotFound => (StatusCode::NOT_FOUND, "tenant_not_found"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Error::TenantUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "tenant_unavailable")
            }
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Error::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Error::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The error with the whole chain of its causes, for operators (the CLI, a tenant's
    /// `last_error`); never for a client of the tenant API.
    pub fn detail(&self) -> String {
        match self {
            Error::Internal(cause) => format!("{cause:#}"),
            other => other.to_string(),
        }
    }

    /// True for mistakes in what the caller asked (CLI exit code 2), false for failures (1).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::Validation { .. } | Error::BadRequest(_))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Error::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                "something went wrong on our side".to_owned()
            }
            other => other.to_string(),
        };
        let fields = match &self {
            Error::Validation { fields, .. } if !fields.is_empty() => Some(fields.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
                fields,
                quota: match &self {
                    Error::QuotaExceeded { quota, .. } => Some((*quota).to_owned()),
                    _ => None,
                },
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Error::RateLimited { retry_after } | Error::TenantUnavailable { retry_after } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

impl From<sqlx::Error> for Error {
    /// A database that is busy (its pool exhausted), closing or unreachable is a passing
    /// condition of that tenant: `503 tenant_unavailable`. Anything else is a bug: `500`.
    fn from(error: sqlx::Error) -> Self {
        if fenced(&error.to_string()) {
            return Error::TenantUnavailable { retry_after: 1 };
        }
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                tracing::warn!(%error, "database unavailable");
                Error::TenantUnavailable { retry_after: 5 }
            }
            // Chosen as a deadlock's victim, or a lock not had in time (a move's switch): to
            // be tried again.
            sqlx::Error::Database(ref db)
                if matches!(db.code().as_deref(), Some("40P01" | "55P03")) =>
            {
                tracing::warn!(%error, "a lock was not had");
                Error::TenantUnavailable { retry_after: 1 }
            }
            other => Error::Internal(other.into()),
        }
    }
}

impl From<crate::pool::PoolError> for Error {
    /// A pool that gives no connection is a passing condition of that tenant (`503
    /// tenant_unavailable`), but for a database that cannot serve at all, a fault (`500`).
    fn from(error: crate::pool::PoolError) -> Self {
        use crate::pool::PoolError;
        match error {
            PoolError::Broken(cause) => Error::Internal(cause.context("a tenant pool")),
            passing => {
                tracing::warn!(error = %anyhow::Error::from(passing), "database unavailable");
                Error::TenantUnavailable { retry_after: 5 }
            }
        }
    }
}

impl From<rusqlite::Error> for Error {
    /// A SQLite tenant database held by another process past the busy wait is as passing as a
    /// busy pool: `503 tenant_unavailable`. Anything else is a bug: `500`.
    fn from(error: rusqlite::Error) -> Self {
        if fenced(&error.to_string()) {
            return Error::TenantUnavailable { retry_after: 1 };
        }
        if crate::sql::is_busy(&error) {
            tracing::warn!(%error, "database unavailable");
            return Error::TenantUnavailable { retry_after: 5 };
        }
        Error::Internal(error.into())
    }
}

/// A write that reached the old copy of a tenant that has just moved (see
/// `control/relocate.rs`): the client is to retry, and finds the new copy.
fn fenced(message: &str) -> bool {
    message.contains(crate::control::FENCE_MESSAGE)
}

/// Maps a unique-constraint violation to `409 conflict` with `message`; anything else stays internal.
pub fn conflict_on_unique(message: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::Conflict(message.to_owned())
        }
        _ => Error::from(error),
    }
}
