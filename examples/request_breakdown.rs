//! Where the time of one `GET /v1/projects?limit=20` goes, in process (no sockets, no HTTP
//! parsing): silo's whole main-listener app through `tower::ServiceExt::oneshot`, the same work
//! without routing (what `examples/baseline.rs` does), and each step silo adds, timed alone.
//! Last, the request's two statements on one connection and spread over many, as (a) and (b)
//! run them: through silo's pool and statement layer, through rusqlite alone (the floor: what
//! the layer is built on), and through sqlx (a thread per SQLite connection).
//! Each figure is the best of several rounds, so other load on the machine inflates it least;
//! run it pinned to one CPU so that wall time is the CPU time of every thread involved.
//!
//! `taskset -c 0 target/release/examples/request_breakdown [--iterations N --rounds R --concurrency C]`

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use axum::{body::Body, http::Request};
use clap::Parser;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use silo::{
    backend::ConnectTarget,
    control::{self, IfExists, Owner, ProvisionRequest},
    database::PoolShape,
    identity::User,
    pool::TenantPool,
    resolve::RequestFacts,
    tenant::Slug,
    AppState, Settings,
};
use sqlx::{AnyConnection, Row};
use tower::ServiceExt;

/// Per-request cost of silo's request path, step by step, in process.
#[derive(Debug, Parser)]
struct Args {
    /// Requests (or steps) per round.
    #[arg(long, default_value_t = 20_000)]
    iterations: u32,
    /// Rounds; the fastest is reported.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Requests in flight at once for the two whole-request figures (silo and no routing).
    #[arg(long, default_value_t = 1)]
    concurrency: u32,
    /// Log level while measuring (silo's default is info; the benchmark runs warn).
    #[arg(long, default_value = "warn")]
    log_level: String,
    /// Connections (each a pool of one, each its own SQLite thread, all on the hot tenant's
    /// file) that the last row spreads the two queries over, as (b) spreads them over tenants.
    #[arg(long, default_value_t = 1000)]
    spread: usize,
}

const MASTER_KEY: &str = "breakdown-master-key-0123456789abcdef";
const SQL: &str = "SELECT id, name, description, owner_id, created_at, updated_at FROM projects \
                   WHERE ($1 = '' OR id < $1) ORDER BY id DESC LIMIT $2";

fn settings(dir: &std::path::Path, log_level: &str) -> anyhow::Result<Settings> {
    let mut settings: Settings = serde_json::from_value(json!({}))?;
    settings.data_dir = dir.join("data");
    let templates = dir.join("templates").join("bench");
    std::fs::create_dir_all(&templates)?;
    std::fs::write(
        templates.join("plan.toml"),
        "open_signup = true\nrequests_per_second = 10000000\nburst = 10000000\nmax_concurrent_requests = 100000\n",
    )?;
    settings.templates_dir = dir.join("templates");
    settings
        .servers
        .get_mut("local")
        .expect("a local server")
        .url = format!("sqlite://{}", dir.join("tenants").display());
    settings.secrets.master_key = MASTER_KEY.into();
    // Only the setup hashes passwords; nothing measured does.
    settings.auth.argon2_memory_kib = 1024;
    settings.auth.argon2_iterations = 1;
    settings.log.level = log_level.into();
    settings.validate()?;
    Ok(settings)
}

async fn call(app: &silo::http::Front, request: Request<Body>) -> anyhow::Result<(u16, Vec<u8>)> {
    let response = app.clone().oneshot(request).await?;
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
    Ok((status, body.to_vec()))
}

fn list_request(token: &str) -> Request<Body> {
    Request::get("/v1/projects?limit=20")
        .header("host", "hot.localhost")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("a valid request")
}

/// A project as silo's list returns it (RFC 3339 timestamps).
#[derive(serde::Serialize)]
struct Project {
    id: String,
    name: String,
    description: Option<String>,
    owner_id: String,
    created_at: String,
    updated_at: String,
}

fn project(row: &silo::sql::Row) -> Project {
    let get = |column: &str| row.try_get::<String>(column).expect("text");
    let time = |column: &str| silo::clock::rfc3339(row.try_get::<i64>(column).expect("integer"));
    Project {
        id: get("id"),
        name: get("name"),
        description: row.try_get("description").expect("text or null"),
        owner_id: get("owner_id"),
        created_at: time("created_at"),
        updated_at: time("updated_at"),
    }
}

/// The database work of one `GET /v1/projects`: the user check and the page, on one connection.
async fn two_queries(pool: &TenantPool, user_id: &str) {
    let mut conn = pool.acquire().await.expect("a connection");
    black_box(User::by_id(&mut conn, user_id).await.expect("query"));
    black_box(
        silo::sql::query(SQL)
            .bind("")
            .bind(21_i64)
            .fetch_all(&mut conn)
            .await
            .expect("query"),
    );
}

/// The same two statements through sqlx on one of its connections (a thread each), every
/// value copied out as silo does.
async fn two_queries_sqlx(conn: &tokio::sync::Mutex<AnyConnection>, user_id: &str) {
    let mut conn = conn.lock().await;
    let user = sqlx::query("SELECT id, email, name, role, created_at FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await
        .expect("query")
        .expect("user");
    black_box((
        user.get::<String, _>("id"),
        user.get::<String, _>("email"),
        user.get::<String, _>("name"),
        user.get::<String, _>("role"),
        user.get::<i64, _>("created_at"),
    ));
    let rows = sqlx::query(SQL)
        .bind("")
        .bind(21_i64)
        .fetch_all(&mut *conn)
        .await
        .expect("query");
    black_box(
        rows.iter()
            .map(|row| {
                (
                    row.get::<String, _>("id"),
                    row.get::<String, _>("name"),
                    row.get::<Option<String>, _>("description"),
                    row.get::<String, _>("owner_id"),
                    row.get::<i64, _>("created_at"),
                    row.get::<i64, _>("updated_at"),
                )
            })
            .collect::<Vec<_>>(),
    );
}

/// A connection to the tenant's file that runs statements on the calling thread.
fn open_direct(file: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    rusqlite::Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// [`two_queries`] through rusqlite: the same statements, every value copied out as sqlx does.
fn two_queries_direct(conn: &rusqlite::Connection, user_id: &str) {
    let mut user = conn
        .prepare_cached("SELECT id, email, name, role, created_at FROM users WHERE id = $1")
        .expect("prepare");
    let found = user.query_row([user_id], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, i64>(4)?,
        ))
    });
    black_box(found.expect("query"));
    let mut page = conn.prepare_cached(SQL).expect("prepare");
    let rows = page
        .query_map(rusqlite::params!["", 21_i64], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })
        .expect("query")
        .collect::<rusqlite::Result<Vec<_>>>();
    black_box(rows.expect("rows"));
}

/// Runs `concurrency` loops of `step` at once, `rounds` times; returns the lowest wall time per
/// call over the rounds, in microseconds. Run pinned to one CPU (`taskset -c 0`), so that wall
/// time is the CPU time of every thread involved, the database threads included.
async fn measure<F, Fut>(args: &Args, concurrency: u32, step: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let per_loop = args.iterations / concurrency.max(1);
    let calls = f64::from(per_loop * concurrency.max(1));
    let mut best = Duration::MAX;
    for _ in 0..args.rounds {
        let started = Instant::now();
        let loops = (0..concurrency.max(1)).map(|_| async {
            for _ in 0..per_loop {
                step().await;
            }
        });
        futures::future::join_all(loops).await;
        best = best.min(started.elapsed());
    }
    best.as_secs_f64() * 1e6 / calls
}

async fn time<F, Fut>(args: &Args, step: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    measure(args, 1, step).await
}

async fn time_concurrent<F, Fut>(args: &Args, step: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    measure(args, args.concurrency, step).await
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The server's runtime: multi-threaded, one worker per CPU it may use.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let settings = settings(dir.path(), &args.log_level)?;
    silo::telemetry::init(&settings.log);
    let state = AppState::build(settings).await?;
    let app = silo::http::app(state.clone());

    // Setup: one tenant, its owner, 20 projects, an access token.
    let password = "breakdown-password";
    control::provision(
        &state,
        ProvisionRequest {
            slug: "hot".into(),
            plan: Some("bench".into()),
            owner: Some(Owner {
                email: "owner@example.com".into(),
                password: password.into(),
            }),
            ..Default::default()
        },
        IfExists::Conflict,
    )
    .await?;
    let login = Request::post("/v1/auth/login")
        .header("host", "hot.localhost")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"email": "owner@example.com", "password": password}).to_string(),
        ))?;
    let (_, body) = call(&app, login).await?;
    let token = serde_json::from_slice::<Value>(&body)?["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("login gave no token"))?
        .to_owned();
    for n in 1..=20 {
        let create = Request::post("/v1/projects")
            .header("host", "hot.localhost")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"name": format!("Project {n}"), "description": "benchmark"}).to_string(),
            ))?;
        anyhow::ensure!(call(&app, create).await?.0 == 201, "creating a project");
    }
    let (status, silo_body) = call(&app, list_request(&token)).await?;
    anyhow::ensure!(status == 200, "listing answered {status}");

    let slug = Slug::parse_shape("hot").map_err(anyhow::Error::msg)?;
    let tenant = state.registry.find(&slug).await?.expect("hot exists");
    let pool = state.pools.get(&tenant).await?;
    let plan = state
        .plans
        .get(&tenant.plan)
        .expect("bench plan")
        .settings
        .clone();
    let user_id = state.access_tokens.verify(&tenant, &token)?.sub;
    // The baseline's key: derived once, not per request.
    let key = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(MASTER_KEY.as_bytes())?;
        mac.update(b"jwt:");
        mac.update(tenant.id.to_string().as_bytes());
        DecodingKey::from_secret(&mac.finalize().into_bytes())
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp", "iat", "sub"]);

    println!(
        "GET /v1/projects?limit=20, {} bytes, in process, {} in flight; best of {} rounds of {} \
         (microseconds per call)",
        silo_body.len(),
        args.concurrency,
        args.rounds,
        args.iterations
    );
    let whole = time_concurrent(&args, || async {
        let (status, body) = call(&app, list_request(&token)).await.expect("a response");
        assert_eq!(status, 200);
        black_box(body);
    })
    .await;
    let bare = time_concurrent(&args, || async {
        let claims = decode::<Value>(&token, &key, &validation).expect("a valid token");
        let sub = claims.claims["sub"].as_str().expect("sub").to_owned();
        // One connection for both queries, as silo's request does.
        let mut conn = pool.acquire().await.expect("a connection");
        let user = User::by_id(&mut conn, &sub)
            .await
            .expect("query")
            .expect("user");
        let rows = silo::sql::query(SQL)
            .bind("")
            .bind(21_i64)
            .fetch_all(&mut conn)
            .await
            .expect("query");
        let mut data: Vec<Project> = rows.iter().map(project).collect();
        data.truncate(20);
        let page = json!({ "data": data, "next_cursor": data.last().map(|p| p.id.clone()) });
        black_box((user, serde_json::to_vec(&page).expect("json")));
    })
    .await;
    let health = time(&args, || async {
        let request = Request::get("/healthz")
            .body(Body::empty())
            .expect("request");
        black_box(call(&app, request).await.expect("a response"));
    })
    .await;
    let unauthorized = time(&args, || async {
        let request = Request::get("/v1/projects?limit=20")
            .header("host", "hot.localhost")
            .body(Body::empty())
            .expect("request");
        let (status, body) = call(&app, request).await.expect("a response");
        assert_eq!(status, 401);
        black_box(body);
    })
    .await;
    println!("| step | us per request |\n| --- | ---: |");
    println!("| silo app, whole request (no socket) | {whole:.1} |");
    println!("| the same work without routing: JWT with a fixed key, user by id, projects query, JSON | {bare:.1} |");
    println!("| difference: what routing adds | {:.1} |", whole - bare);
    println!("| silo app, GET /healthz (layers and router, no tenant) | {health:.1} |");
    println!("| silo app, GET /v1/projects without a token (tenant resolved, pool found, 401) | {unauthorized:.1} |");

    let one_connection_us = time(&args, || async {
        two_queries(&pool, &user_id).await;
    })
    .await;
    let steps: Vec<(&str, f64)> = vec![
        (
            "resolve: Host -> slug claims",
            time(&args, || async {
                black_box(state.resolver.claims(RequestFacts {
                    host: Some("hot.localhost"),
                    x_tenant: None,
                    path: "/v1/projects",
                }));
            })
            .await,
        ),
        (
            "registry cache hit (moka)",
            time(&args, || async {
                black_box(state.registry.find(&slug).await.expect("found"));
            })
            .await,
        ),
        (
            "per-tenant limits: admit and release",
            time(&args, || async {
                black_box(state.limits.admit(tenant.id, &plan).expect("admitted"));
            })
            .await,
        ),
        (
            "pool cache hit (moka)",
            time(&args, || async {
                black_box(state.pools.get(&tenant).await.expect("a pool"));
            })
            .await,
        ),
        (
            "JWT verify with the per-request key derivation",
            time(&args, || async {
                black_box(state.access_tokens.verify(&tenant, &token).expect("valid"));
            })
            .await,
        ),
        (
            "JWT verify with a fixed key (the baseline)",
            time(&args, || async {
                black_box(decode::<Value>(&token, &key, &validation).expect("valid"));
            })
            .await,
        ),
        (
            "request id (UUID v4)",
            time(&args, || async {
                black_box(uuid::Uuid::new_v4().to_string());
            })
            .await,
        ),
        (
            "request span (created, entered, recorded)",
            time(&args, || async {
                let span = tracing::info_span!(
                    "request",
                    id = "x",
                    listener = "main",
                    method = "GET",
                    tenant = tracing::field::Empty,
                    route = tracing::field::Empty,
                    status = tracing::field::Empty
                );
                span.record("route", "/v1/projects");
                span.record("status", 200);
                tracing::info!(parent: &span, latency_ms = 0.1, "request finished");
                black_box(span);
            })
            .await,
        ),
        (
            "metrics: request counter and histogram",
            time(&args, || async {
                state
                    .metrics
                    .observe_request("main", "GET", "/v1/projects", 200, 0.000_2);
            })
            .await,
        ),
        (
            "request timeout (tokio timer armed and dropped)",
            time(&args, || async {
                let _ = tokio::time::timeout(Duration::from_secs(30), async {}).await;
            })
            .await,
        ),
        (
            "user lookup by id (also in the baseline)",
            time(&args, || async {
                let mut conn = pool.acquire().await.expect("a connection");
                black_box(User::by_id(&mut conn, &user_id).await.expect("query"));
            })
            .await,
        ),
        (
            "projects query, 21 rows (also in the baseline)",
            time(&args, || async {
                let mut conn = pool.acquire().await.expect("a connection");
                black_box(
                    silo::sql::query(SQL)
                        .bind("")
                        .bind(21_i64)
                        .fetch_all(&mut conn)
                        .await
                        .expect("query"),
                );
            })
            .await,
        ),
        (
            "user lookup + projects query on one connection (what (a) does)",
            one_connection_us,
        ),
    ];
    // What (b) adds: the same two queries, each request on the next of `spread` connections.
    let file = dir.path().join("tenants").join(&tenant.database);
    let one_each = PoolShape {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(5),
        idle_timeout: None,
    };
    let mut spread = Vec::with_capacity(args.spread);
    for _ in 0..args.spread.max(1) {
        spread.push(TenantPool::open(ConnectTarget::File(file.clone()), one_each).await?);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let spread_us = time(&args, || async {
        let turn = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        two_queries(&spread[turn % spread.len()], &user_id).await;
    })
    .await;
    let spread_step = format!(
        "the same, each request on the next of {} connections (what (b) does)",
        spread.len()
    );
    // The same two queries through a driver that runs them on the caller's thread (rusqlite),
    // on one connection and spread the same way: what sqlx's thread per connection costs.
    let direct = (0..args.spread.max(1))
        .map(|_| open_direct(&file))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let direct_one_us = time(&args, || async {
        two_queries_direct(&direct[0], &user_id);
    })
    .await;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let direct_spread_us = time(&args, || async {
        let turn = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        two_queries_direct(&direct[turn % direct.len()], &user_id);
    })
    .await;
    let direct_spread_step = format!(
        "the same two queries with rusqlite, each request on the next of {} connections",
        direct.len()
    );
    // And through sqlx, whose SQLite driver runs each connection on a thread of its own (what
    // silo used before its own statement layer).
    let mut through_sqlx = Vec::with_capacity(args.spread);
    for _ in 0..args.spread.max(1) {
        let options = silo::database::connect_options(&silo::database::sqlite_url(&file, false))?;
        let mut conn = sqlx::ConnectOptions::connect(&options).await?;
        silo::database::prepare_connection(&mut conn).await?;
        through_sqlx.push(tokio::sync::Mutex::new(conn));
    }
    let sqlx_one_us = time(&args, || async {
        two_queries_sqlx(&through_sqlx[0], &user_id).await;
    })
    .await;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let sqlx_spread_us = time(&args, || async {
        let turn = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        two_queries_sqlx(&through_sqlx[turn % through_sqlx.len()], &user_id).await;
    })
    .await;
    let sqlx_spread_step = format!(
        "the same two queries with sqlx, each request on the next of {} connections",
        through_sqlx.len()
    );
    let direct_steps = [
        (
            "the same two queries with rusqlite (on the caller's thread), one connection",
            direct_one_us,
        ),
        (direct_spread_step.as_str(), direct_spread_us),
        (
            "the same two queries with sqlx (a thread per connection), one connection",
            sqlx_one_us,
        ),
        (sqlx_spread_step.as_str(), sqlx_spread_us),
    ];
    for (step, us) in steps
        .into_iter()
        .chain([(spread_step.as_str(), spread_us)])
        .chain(direct_steps)
    {
        println!("| {step} | {us:.2} |");
    }
    println!(
        "\none connection / spread: silo {:.3}, rusqlite alone {:.3}, sqlx {:.3}",
        one_connection_us / spread_us,
        direct_one_us / direct_spread_us,
        sqlx_one_us / sqlx_spread_us
    );
    for pool in spread {
        pool.close().await;
    }
    state.close().await;
    Ok(())
}
