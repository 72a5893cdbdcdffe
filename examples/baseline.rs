//! The baseline of `scripts/bench.sh`: `GET /v1/projects` as silo answers it, minus tenancy.
//! One hard-wired SQLite pool (a copy of one tenant's database, opened as silo opens a tenant
//! pool), the same JWT check (HS256 with the tenant's derived key, the same validation and the
//! same per-request user lookup by primary key, on the one connection the request takes, as
//! silo does), the same SQL and the same JSON. What it lacks is what silo adds: tenant
//! resolution, the registry cache, the pool cache, per-tenant limits, request ids, spans and
//! metrics.
//!
//! Its pool is sqlx's own (`--pool sqlx`, the default), as an app hard-wired to one database
//! would have it, opened with silo's settings; `--pool silo` serves from silo's tenant pool and
//! runs the statements through silo's statement layer (`silo::sql`, rusqlite on the caller's
//! thread) instead, so that the two servers differ only in what silo does per request.
//!
//! `cargo run --release --example baseline -- --db tenant.db --tenant-id <id>` (or
//! `--url postgres://...` for a tenant database on PostgreSQL) with
//! `SILO__SECRETS__MASTER_KEY` set to the master key of the silo that issued the tokens.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use clap::Parser;
use hmac::{Hmac, Mac};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use silo::{
    backend::ConnectTarget,
    pool::{PooledConnection, TenantPool},
};
use sqlx::{pool::PoolConnection, Any, AnyPool, Row};

/// A minimal axum app serving one tenant's projects with silo's query and token check.
#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// The SQLite database to serve (a copy of one tenant's file).
    #[arg(long, required_unless_present = "url")]
    db: Option<std::path::PathBuf>,
    /// Or a database on a server, by URL (a tenant's PostgreSQL database).
    #[arg(long, conflicts_with = "db")]
    url: Option<String>,
    /// The id of the tenant the tokens were issued for (their `tid`, and the key's input).
    #[arg(long)]
    tenant_id: String,
    /// Connections in the pool (silo's `pool.max_connections_per_tenant`).
    #[arg(long, default_value_t = 4)]
    max_connections: u32,
    /// Whose pool serves the connections: sqlx's, or silo's tenant pool.
    #[arg(long, value_enum, default_value_t = PoolKind::Sqlx)]
    pool: PoolKind,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PoolKind {
    Sqlx,
    Silo,
}

enum Pool {
    Sqlx(AnyPool),
    Silo(TenantPool),
}

/// A connection from either pool; handed back when dropped.
enum Conn {
    Sqlx(PoolConnection<Any>),
    Silo(PooledConnection),
}

impl Pool {
    async fn acquire(&self) -> anyhow::Result<Conn> {
        Ok(match self {
            Pool::Sqlx(pool) => Conn::Sqlx(pool.acquire().await?),
            Pool::Silo(pool) => Conn::Silo(pool.acquire().await?),
        })
    }
}

/// Reads a project from either driver's row (their `try_get` is called alike).
macro_rules! project {
    ($row:expr) => {
        Project {
            id: $row.try_get("id")?,
            name: $row.try_get("name")?,
            description: $row.try_get("description")?,
            owner_id: $row.try_get("owner_id")?,
            created_at: $row.try_get("created_at")?,
            updated_at: $row.try_get("updated_at")?,
        }
    };
}

/// Reads the user's role from either driver's row, every column decoded as silo decodes its
/// `User`.
macro_rules! role {
    ($row:expr) => {{
        let (_, _, _, _): (String, String, String, i64) = (
            $row.try_get("id")?,
            $row.try_get("email")?,
            $row.try_get("name")?,
            $row.try_get("created_at")?,
        );
        let role: String = $row.try_get("role")?;
        role
    }};
}

const USER: &str = "SELECT id, email, name, role, created_at FROM users WHERE id = $1";
const PROJECTS: &str = "SELECT id, name, description, owner_id, created_at, updated_at \
                        FROM projects WHERE ($1 = '' OR id < $1) ORDER BY id DESC LIMIT $2";

/// The two statements of a request, through sqlx as an app would write them, or through
/// silo's own statement layer (rusqlite for SQLite, on the caller's thread).
impl Conn {
    /// The user's role, every column decoded as silo decodes its `User`.
    async fn user_role(&mut self, id: &str) -> anyhow::Result<Option<String>> {
        Ok(match self {
            Conn::Sqlx(conn) => match sqlx::query(USER)
                .bind(id)
                .fetch_optional(&mut **conn)
                .await?
            {
                Some(row) => Some(role!(row)),
                None => None,
            },
            Conn::Silo(conn) => match silo::sql::query(USER).bind(id).fetch_optional(conn).await? {
                Some(row) => Some(role!(row)),
                None => None,
            },
        })
    }

    async fn projects(&mut self, after: &str, limit: i64) -> anyhow::Result<Vec<Project>> {
        match self {
            Conn::Sqlx(conn) => {
                let rows = sqlx::query(PROJECTS)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut **conn)
                    .await?;
                rows.iter().map(|row| Ok(project!(row))).collect()
            }
            Conn::Silo(conn) => {
                let rows = silo::sql::query(PROJECTS)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(conn)
                    .await?;
                rows.iter().map(|row| Ok(project!(row))).collect()
            }
        }
    }
}

struct App {
    pool: Pool,
    key: DecodingKey,
    validation: Validation,
    tenant_id: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    tid: String,
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct Project {
    id: String,
    name: String,
    description: Option<String>,
    owner_id: String,
    #[serde(serialize_with = "silo::clock::as_rfc3339")]
    created_at: i64,
    #[serde(serialize_with = "silo::clock::as_rfc3339")]
    updated_at: i64,
}

#[derive(Serialize)]
struct Page {
    data: Vec<Project>,
    next_cursor: Option<String>,
}

fn error(status: StatusCode, code: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": code } });
    (status, Json(body)).into_response()
}

async fn list_projects(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    match list(&app, &headers, &query).await {
        Ok(page) => Json(page).into_response(),
        Err(response) => response,
    }
}

async fn list(app: &App, headers: &HeaderMap, query: &PageQuery) -> Result<Page, Response> {
    let unauthorized = || error(StatusCode::UNAUTHORIZED, "unauthorized");
    let internal = |_: anyhow::Error| error(StatusCode::INTERNAL_SERVER_ERROR, "internal");
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(unauthorized)?;
    let claims = decode::<Claims>(token, &app.key, &app.validation)
        .map_err(|_| unauthorized())?
        .claims;
    if claims.tid != app.tenant_id {
        return Err(unauthorized());
    }
    // One connection for the request's two queries, as silo takes one per request.
    let mut conn = app.pool.acquire().await.map_err(internal)?;
    // silo checks the user in the tenant database on every request; so does the baseline.
    let role = conn
        .user_role(&claims.sub)
        .await
        .map_err(internal)?
        .ok_or_else(unauthorized)?;
    if !matches!(role.as_str(), "owner" | "admin" | "member" | "viewer") {
        return Err(error(StatusCode::FORBIDDEN, "forbidden"));
    }
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Err(error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")),
        },
    };
    let after = match query.cursor.as_deref() {
        None | Some("") => String::new(),
        Some(raw) => uuid::Uuid::parse_str(raw)
            .map_err(|_| error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"))?
            .hyphenated()
            .to_string(),
    };
    let mut data = conn
        .projects(&after, i64::from(limit) + 1)
        .await
        .map_err(internal)?;
    let more = data.len() > limit as usize;
    data.truncate(limit as usize);
    let next_cursor = if more {
        data.last().map(|p| p.id.clone())
    } else {
        None
    };
    Ok(Page { data, next_cursor })
}

/// Opens the pool with the settings silo gives a tenant pool.
async fn open_pool(args: &Args) -> anyhow::Result<Pool> {
    let url = match (&args.url, &args.db) {
        (Some(url), _) => url.clone(),
        (None, Some(db)) => silo::database::sqlite_url(db, false),
        (None, None) => anyhow::bail!("--db or --url is needed"),
    };
    let shape = silo::database::PoolShape {
        max_connections: args.max_connections,
        acquire_timeout: Duration::from_secs(5),
        idle_timeout: Some(silo::database::CONNECTION_IDLE_TIMEOUT.min(Duration::from_secs(300))),
    };
    Ok(match args.pool {
        PoolKind::Sqlx => Pool::Sqlx(silo::database::open(&url, shape).await?),
        PoolKind::Silo => {
            let target = match &args.db {
                Some(db) => ConnectTarget::File(db.clone()),
                None => ConnectTarget::Server {
                    options: silo::database::connect_options(&url)
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                    next: None,
                },
            };
            Pool::Silo(TenantPool::open(target, shape).await?)
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let master_key = std::env::var("SILO__SECRETS__MASTER_KEY")
        .map_err(|_| anyhow::anyhow!("SILO__SECRETS__MASTER_KEY is not set"))?;
    // silo's derivation, done once here: HMAC-SHA256(master key, "jwt:" || tenant id).
    let mut mac = Hmac::<Sha256>::new_from_slice(master_key.as_bytes())?;
    mac.update(b"jwt:");
    mac.update(args.tenant_id.as_bytes());
    let key = DecodingKey::from_secret(&mac.finalize().into_bytes());
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp", "iat", "sub"]);
    let app = Arc::new(App {
        pool: open_pool(&args).await?,
        key,
        validation,
        tenant_id: args.tenant_id.clone(),
    });
    let router = Router::new()
        .route("/v1/projects", get(list_projects))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    eprintln!("baseline: listening on {}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
