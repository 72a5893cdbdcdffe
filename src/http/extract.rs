//! Typed extractors. `Json` and `Query` give our error shape instead of axum's text;
//! `TenantDb` and `CurrentUser` carry what `http::tenant` resolved for this request only.

use axum::{
    extract::{
        rejection::JsonRejection, rejection::QueryRejection, FromRequest, FromRequestParts, Request,
    },
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::{
    audit::Actor,
    error::Error,
    http::tenant::ensure_serving,
    identity::{ApiToken, Role, Scope, User},
    pool::{PooledConnection, TenantPool},
    sql::TenantConn,
    state::AppState,
    tenant::TenantRecord,
};

/// A JSON body whose rejections are API errors: wrong content type 415, bad syntax 400,
/// wrong shape or unknown field 422, too large 413.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        // Bodies are read as sent: a compressed one would be taken for (bad) JSON, or worse,
        // a body labelled compressed but sent plain would be accepted.
        let encoded = req
            .headers()
            .get_all(header::CONTENT_ENCODING)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
            .map(<[u8]>::trim_ascii)
            // RFC 9110 lists may hold empty elements, which name nothing.
            .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity"));
        if encoded {
            return Err(Error::UnsupportedMediaType(
                "compressed request bodies are not accepted (Content-Encoding); send the JSON as is"
                    .into(),
            ));
        }
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON body whose fields are all optional: an empty body, with or without a Content-Type,
/// reads as `{}`. Anything else is read as [`Json`] reads it.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let (parts, body) = req.into_parts();
        let head = Request::from_parts(parts.clone(), axum::body::Body::empty());
        let bytes = axum::body::Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
                _ => Error::BadRequest("the request body could not be read".into()),
            })?;
        if bytes.is_empty() {
            return Ok(OptionalJson(T::default()));
        }
        let (parts, _) = head.into_parts();
        let Json(value) =
            Json::from_request(Request::from_parts(parts, bytes.into()), state).await?;
        Ok(OptionalJson(value))
    }
}

fn json_error(rejection: JsonRejection) -> Error {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType(
            "the body must be JSON (Content-Type: application/json)".into(),
        ),
        StatusCode::UNPROCESSABLE_ENTITY => Error::Validation {
            message: clean(rejection.body_text()),
            fields: Default::default(),
        },
        _ => Error::BadRequest(format!(
            "the body is not valid JSON: {}",
            clean(rejection.body_text())
        )),
    }
}

/// serde's message minus axum's prefix, capped so echoed input cannot be huge.
fn clean(text: String) -> String {
    let text = text
        .split_once(": ")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or(text);
    text.chars().take(300).collect()
}

/// Query parameters whose rejections are `422 validation_failed`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|rejection: QueryRejection| Error::Validation {
                message: clean(rejection.body_text()),
                fields: Default::default(),
            })
    }
}

/// Path parameters whose rejections (say, invalid UTF-8 in `%FF`) are JSON errors too. A value
/// that cannot name anything in the path is `404 not_found`.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| Path(path.0))
            .map_err(|_| Error::NotFound("nothing here has that name".into()))
    }
}

/// The resolved tenant and a connection to its own database. Only `http::tenant` creates
/// one, so a handler can reach no other tenant's database.
///
/// The connection is taken from the tenant's pool on first use and then shared by everything
/// the request does: the user check of [`CurrentUser`] and the handler's own queries run on it,
/// so a request costs one acquisition and one hand-back, not one per query.
///
/// It goes back to the pool earlier through [`TenantDb::release`], or when the request is done
/// if [`TenantDb::finish`] said it ended well. A request cut off (the timeout, a client gone, a
/// panic) may have left a transaction open on it (or, on a server, a statement running), and
/// one that failed with a server error may have left the connection broken: then the
/// connection is closed rather than handed to the tenant's next request. The pool hands connections back without a
/// liveness ping, so this is what keeps it safe.
#[derive(Clone)]
pub struct TenantDb {
    pub tenant: Arc<TenantRecord>,
    request: Arc<RequestConnection>,
}

struct RequestConnection {
    state: AppState,
    pool: TenantPool,
    held: Mutex<Option<PooledConnection>>,
    /// Set by [`TenantDb::finish`]: the request ran to completion without a server error.
    reusable: AtomicBool,
}

impl TenantDb {
    pub(crate) fn new(state: AppState, tenant: Arc<TenantRecord>, pool: TenantPool) -> Self {
        Self {
            tenant,
            request: Arc::new(RequestConnection {
                state,
                pool,
                held: Mutex::new(None),
                reusable: AtomicBool::new(false),
            }),
        }
    }

    /// Says how the request ended: a connection still held goes back to the pool only if
    /// `ended_well`, else it is closed (see [`TenantDb`]).
    pub(crate) fn finish(&self, ended_well: bool) {
        self.request.reusable.store(ended_well, Ordering::Release);
    }

    /// This request's connection, taken from the tenant's pool on first use. Hold the guard
    /// only for a statement or a transaction: it is the request's one connection.
    pub async fn conn(&self) -> Result<MappedMutexGuard<'_, TenantConn>, Error> {
        let mut held = self.request.held.lock().await;
        if held.is_none() {
            *held = Some(self.acquire().await?);
        }
        MutexGuard::try_map(held, |held| held.as_deref_mut())
            .map_err(|_| Error::Internal(anyhow::anyhow!("the request's connection was not kept")))
    }

    /// Hands the connection back to the pool before slow work that needs no database (a
    /// password hash), so the tenant's other requests can use it meanwhile. The next
    /// [`TenantDb::conn`] takes one again.
    pub async fn release(&self) {
        self.request.held.lock().await.take();
    }

    async fn acquire(&self) -> Result<PooledConnection, Error> {
        match self.request.pool.acquire().await {
            // The pool closed between `http::tenant` finding it and this query (it was idle,
            // it made room in the server's connection budget, or the tenant changed). Open it
            // again only if the registry still serves this very tenant: a tenant deleted or
            // suspended meanwhile gets the answer `http::tenant` would now give.
            Err(sqlx::Error::PoolClosed) => {
                let state = &self.request.state;
                let current = state
                    .registry
                    .find(&self.tenant.slug)
                    .await?
                    .filter(|current| current.id == self.tenant.id)
                    .ok_or(Error::TenantNotFound)?;
                ensure_serving(&current)?;
                let pool = state.pools.get(&current).await?;
                Ok(pool.acquire().await?)
            }
            acquired => Ok(acquired?),
        }
    }
}

impl Drop for RequestConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.held.get_mut().take() {
            if !self.reusable.load(Ordering::Acquire) {
                conn.discard();
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantDb {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        parts.extensions.get::<TenantDb>().cloned().ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "a tenant route ran without its tenant resolved"
            ))
        })
    }
}

/// The signed-in user of the resolved tenant, checked against the tenant database on every
/// request, so removal and role changes take effect at once.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub credential: Credential,
}

/// How the user proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An access token (JWT) from a sign-in, a refresh or a support session.
    AccessToken,
    /// An API token: limited to its scopes, and never beyond the user's role.
    ApiToken(ApiToken),
}

impl CurrentUser {
    /// For endpoints no scope names: an access token with at least `required`. API tokens are
    /// refused, since each scope allows only what it names.
    pub fn require(&self, required: Role) -> Result<&User, Error> {
        if let Credential::ApiToken(_) = self.credential {
            return Err(Error::Forbidden(
                "API tokens cannot use this endpoint".into(),
            ));
        }
        self.require_role(required)
    }

    /// For endpoints a scope names: at least `required`, and `scope` when it is an API token.
    pub fn require_scoped(&self, required: Role, scope: Scope) -> Result<&User, Error> {
        if let Credential::ApiToken(token) = &self.credential {
            if !token.scopes.contains(&scope) {
                return Err(Error::Forbidden(format!(
                    "this API token lacks the {scope} scope"
                )));
            }
        }
        self.require_role(required)
    }

    fn require_role(&self, required: Role) -> Result<&User, Error> {
        if self.user.role.at_least(required) {
            Ok(&self.user)
        } else {
            Err(Error::Forbidden(format!(
                "this needs the {required} role or higher"
            )))
        }
    }

    /// Who this is, for the audit log.
    pub fn actor(&self) -> Actor<'_> {
        match &self.credential {
            Credential::AccessToken => Actor::User(&self.user.id),
            Credential::ApiToken(token) => Actor::ApiToken {
                user: &self.user.id,
                token: &token.id,
            },
        }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let db = TenantDb::from_request_parts(parts, state).await?;
        let token = bearer(parts).ok_or(Error::Unauthorized("a bearer token is required"))?;
        if token.starts_with("sk_") {
            let (api_token, user) = state
                .api_tokens
                .authenticate(&mut *db.conn().await?, token)
                .await?;
            release_before_body(&db, parts).await;
            return Ok(CurrentUser {
                user,
                credential: Credential::ApiToken(api_token),
            });
        }
        let claims = state.access_tokens.verify(db.tenant.id, token)?;
        let user = User::by_id(&mut *db.conn().await?, &claims.sub)
            .await?
            .ok_or(Error::Unauthorized("this account no longer exists"))?;
        release_before_body(&db, parts).await;
        Ok(CurrentUser {
            user,
            credential: Credential::AccessToken,
        })
    }
}

/// The body is read after the user check (axum reads it last), and a client may send it as
/// slowly as the request timeout allows: the request's connection goes back to the pool
/// meanwhile, so slow uploads cannot hold all of a tenant's connections. Requests without a
/// body (most reads) keep it for the handler.
async fn release_before_body(db: &TenantDb, parts: &Parts) {
    let has_body = parts.headers.contains_key(header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    if has_body {
        db.release().await;
    }
}

/// The token of `Authorization: Bearer <token>`, if well-formed.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        database::{self, PoolShape},
        tenant::{Slug, Status, TenantId},
    };

    fn tenant() -> Arc<TenantRecord> {
        Arc::new(TenantRecord {
            id: TenantId::new(),
            slug: Slug::parse_shape("acme").unwrap(),
            name: "acme".into(),
            plan: "free".into(),
            status: Status::Active,
            server: "local".into(),
            database: "acme.db".into(),
            schema_version: 1,
            domains: vec![],
            created_at: 0,
            last_error: None,
        })
    }

    /// Runs `sql` on the request's connection.
    async fn run(db: &TenantDb, sql: &str) -> Result<(), Error> {
        let mut conn = db.conn().await.expect("a connection");
        crate::sql::query(sql).execute(&mut *conn).await.map(drop)
    }

    #[tokio::test]
    async fn a_connection_goes_back_to_the_pool_only_from_a_request_that_ended_well() {
        let dir = tempfile::tempdir().unwrap();
        let state = AppState::for_tests(dir.path()).await;
        // An empty file is an empty SQLite database; tenant pools never create their file.
        let file = dir.path().join("acme.db");
        std::fs::File::create(&file).unwrap();
        let url = database::sqlite_url(&file, false);
        let shape = PoolShape {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: None,
        };
        let pool = TenantPool::open(&url, shape).await.unwrap();
        let request = || TenantDb::new(state.clone(), tenant(), pool.clone());

        // Ended well: the next request gets the same connection (its temporary table shows it).
        let db = request();
        run(&db, "CREATE TEMP TABLE session_mark (x)")
            .await
            .unwrap();
        db.finish(true);
        drop(db);
        let db = request();
        run(&db, "SELECT x FROM session_mark").await.unwrap();

        // Cut off inside a transaction (never finished): the next request starts on a new
        // connection (no temporary table), so it is not inside that transaction, and the
        // half-done write was never committed.
        run(&db, "CREATE TABLE projects (name TEXT)").await.unwrap();
        run(&db, "BEGIN").await.unwrap();
        run(&db, "INSERT INTO projects VALUES ('half-done')")
            .await
            .unwrap();
        drop(db);
        let db = request();
        let error = run(&db, "SELECT x FROM session_mark").await.unwrap_err();
        assert!(error.to_string().contains("no such table"), "{error}");
        let rows: i64 = crate::sql::query("SELECT count(*) AS n FROM projects")
            .fetch_one(&mut *db.conn().await.unwrap())
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(rows, 0);

        // Ended with a server error: closed as well.
        run(&db, "CREATE TEMP TABLE session_mark (x)")
            .await
            .unwrap();
        db.finish(false);
        drop(db);
        let db = request();
        assert!(run(&db, "SELECT x FROM session_mark").await.is_err());
        assert_eq!(pool.size(), 1, "one connection at a time, never two");
    }
}
