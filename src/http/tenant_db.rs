//! `TenantDb`: the tenant `http::tenant` resolved for this request, and the request's one
//! connection to that tenant's own database.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use axum::{extract::FromRequestParts, http::request::Parts};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::{
    error::Error,
    pool::{PoolError, PooledConnection, TenantPool},
    sql::TenantConn,
    state::AppState,
    tenant::TenantRecord,
};

/// The resolved tenant and a connection to its own database. Only `http::tenant` creates
/// one, so a handler can reach no other tenant's database.
///
/// The connection is taken from the tenant's pool on first use and then shared by everything
/// the request does: the user check of [`CurrentUser`](super::CurrentUser) and the handler's own queries run on it,
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

    /// The router's state, for handlers that need more than the connection (quotas, keys).
    pub fn state(&self) -> &AppState {
        &self.request.state
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
            Err(PoolError::Closed) => {
                let state = &self.request.state;
                let current = state
                    .registry
                    .find(&self.tenant.slug)
                    .await?
                    .filter(|current| current.id == self.tenant.id)
                    .ok_or(Error::TenantNotFound)?;
                current.status.ensure_serving()?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        backend::ConnectTarget,
        database::PoolShape,
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
            credentials_version: 1,
            credentials_key: String::new(),
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
        let shape = PoolShape {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: None,
        };
        let pool = TenantPool::open(ConnectTarget::File(file), shape)
            .await
            .unwrap();
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
