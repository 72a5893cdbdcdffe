//! Setup for `scripts/bench.sh`, over silo's own APIs: provision many tenants through the admin
//! API in parallel, then sign in to some of them, give each the same number of projects and
//! write a targets file (`<slug>.localhost\t<access token>` per line) for the load generator.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Provision every tenant of a list: `POST /admin/v1/tenants`, `--concurrency` at a time.
    Provision {
        /// Base URL of the admin listener.
        #[arg(long)]
        admin: String,
        /// The admin token; read from this environment variable.
        #[arg(long, default_value = "SILO__ADMIN__TOKEN")]
        token_env: String,
        /// One tenant per line: `<slug> <plan> <owner|none>`.
        #[arg(long)]
        tenants: PathBuf,
        /// Owner email of tenants marked `owner` (one account per tenant: identity is isolated).
        #[arg(long, default_value = "owner@example.com")]
        email: String,
        /// Owner password; read from this environment variable.
        #[arg(long, default_value = "BENCH_PASSWORD")]
        password_env: String,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Also write each new tenant's database name, one per line, to this file.
        #[arg(long)]
        databases_out: Option<PathBuf>,
    },
    /// How long a suspension made through one router takes to be answered by another: suspend
    /// `--slug` through `--admin` (router A's admin listener), then ask `--router` (router B's
    /// main listener) as fast as it answers until it says `403 tenant_suspended`, timed from
    /// the moment the suspend request is sent; resume, and wait for B to serve it again;
    /// `--tries` times. Prints p50, p99 and max in ms of both.
    Propagation {
        #[arg(long)]
        admin: String,
        #[arg(long, default_value = "SILO__ADMIN__TOKEN")]
        token_env: String,
        #[arg(long)]
        router: String,
        #[arg(long)]
        slug: String,
        #[arg(long, default_value_t = 100)]
        tries: usize,
    },
    /// Ask each tenant of a list for `GET /v1/me` without a token (401), so the router has
    /// resolved, and cached, every one of them without opening any tenant pool.
    Touch {
        /// Base URL of the main listener.
        #[arg(long)]
        url: String,
        /// One slug per line (the first word of each line is used).
        #[arg(long)]
        slugs: PathBuf,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Sign in to each tenant of a list, create `--projects` projects, write the targets file.
    Prepare {
        /// Base URL of the main listener.
        #[arg(long)]
        url: String,
        /// One slug per line (the first word of each line is used).
        #[arg(long)]
        slugs: PathBuf,
        #[arg(long, default_value = "owner@example.com")]
        email: String,
        #[arg(long, default_value = "BENCH_PASSWORD")]
        password_env: String,
        #[arg(long, default_value_t = 20)]
        projects: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Where to write `<slug>.localhost\t<access token>` lines.
        #[arg(long)]
        out: PathBuf,
    },
    /// Give every tenant database file in a directory `--rows` projects, written straight into
    /// the files (silo stopped), for the migration benchmark's table of that many rows.
    Fill {
        /// The tenants directory (`servers.local`).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 200)]
        rows: usize,
    },
    /// Drop each database of a list, and its role, on the server whose admin URL is given.
    DropPostgres {
        #[arg(long)]
        server: String,
        #[arg(long)]
        databases: PathBuf,
    },
    /// The same on PostgreSQL: each database of a list (one name per line, as `provision
    /// --databases-out` writes them) on the server whose admin URL is given.
    FillPostgres {
        #[arg(long)]
        server: String,
        #[arg(long)]
        databases: PathBuf,
        #[arg(long, default_value_t = 200)]
        rows: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

/// See [`Command::Fill`]. Files starting with `.` (templates, locks) are not tenants.
fn fill(dir: &std::path::Path, rows: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut filled = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".db") {
            continue;
        }
        let mut conn = rusqlite::Connection::open(&path)?;
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO projects (id, name, description, owner_id, created_at, updated_at)
                 VALUES (?1, ?2, NULL, ?3, ?4, ?4)",
            )?;
            let owner = uuid::Uuid::now_v7().to_string();
            for n in 0..rows {
                let id = uuid::Uuid::now_v7().to_string();
                insert.execute(rusqlite::params![
                    id,
                    format!("project {n}"),
                    owner,
                    n as i64
                ])?;
            }
        }
        tx.commit()?;
        filled += 1;
    }
    eprintln!(
        "filled {filled} tenant databases with {rows} projects each in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// See [`Command::FillPostgres`]: one transaction of `rows` inserts per database.
async fn fill_postgres(
    server: &str,
    databases: &PathBuf,
    rows: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    use sqlx::Connection;
    let started = Instant::now();
    let base = url::Url::parse(server)?;
    let names = lines(databases)?;
    let count = names.len();
    for_each(names, concurrency, "filled", move |name| {
        let mut url = base.clone();
        url.set_path(&format!("/{name}"));
        async move {
            let mut conn = sqlx::PgConnection::connect(url.as_str()).await?;
            let mut tx = conn.begin().await?;
            let owner = uuid::Uuid::now_v7().to_string();
            for n in 0..rows {
                sqlx::query(
                    "INSERT INTO projects (id, name, description, owner_id, created_at, updated_at)
                     VALUES ($1, $2, NULL, $3, $4, $4)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(format!("project {n}"))
                .bind(&owner)
                .bind(n as i64)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            conn.close().await?;
            Ok(())
        }
    })
    .await?;
    eprintln!(
        "filled {count} tenant databases with {rows} projects each in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).map_err(|_| anyhow::anyhow!("{name} is not set"))
}

fn lines(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    match Cli::parse().command {
        Command::Fill { dir, rows } => fill(&dir, rows)?,
        Command::FillPostgres {
            server,
            databases,
            rows,
            concurrency,
        } => fill_postgres(&server, &databases, rows, concurrency).await?,
        Command::Propagation {
            admin,
            token_env,
            router,
            slug,
            tries,
        } => {
            let token = env(&token_env)?;
            let admin = admin.trim_end_matches('/').to_owned();
            let me = format!("{}/v1/me", router.trim_end_matches('/'));
            let host = format!("{slug}.localhost");
            // Milliseconds from `started` (the admin request sent) until B answers `suspended`
            // (or stops).
            let until = |suspended: bool, started: Instant| {
                let (client, me, host) = (client.clone(), me.clone(), host.clone());
                async move {
                    loop {
                        let reply = client.get(&me).header("host", &host).send().await?;
                        let status = reply.status().as_u16();
                        let body: Value = reply.json().await.unwrap_or_default();
                        let is_suspended =
                            status == 403 && body["error"]["code"] == "tenant_suspended";
                        if is_suspended == suspended {
                            return anyhow::Ok(started.elapsed().as_secs_f64() * 1000.0);
                        }
                        anyhow::ensure!(
                            started.elapsed() < Duration::from_secs(30),
                            "router B never answered {} ({status} {body})",
                            if suspended { "suspended" } else { "active" }
                        );
                    }
                }
            };
            let (mut suspend, mut resume) = (Vec::new(), Vec::new());
            for _ in 0..tries {
                for (action, times) in [("suspend", &mut suspend), ("resume", &mut resume)] {
                    let started = Instant::now();
                    client
                        .post(format!("{admin}/admin/v1/tenants/{slug}/{action}"))
                        .bearer_auth(&token)
                        .send()
                        .await?
                        .error_for_status()?;
                    times.push(until(action == "suspend", started).await?);
                }
            }
            for (what, mut times) in [("suspend to 403", suspend), ("resume to served", resume)] {
                times.sort_by(f64::total_cmp);
                let at = |q: f64| {
                    times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1]
                };
                println!(
                    "| {what} | {} | {:.1} | {:.1} | {:.1} |",
                    times.len(),
                    at(0.5),
                    at(0.99),
                    times[times.len() - 1]
                );
            }
        }
        Command::Touch {
            url,
            slugs,
            concurrency,
        } => {
            let me = format!("{}/v1/me", url.trim_end_matches('/'));
            let slugs: Vec<String> = lines(&slugs)?
                .iter()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect();
            for_each(slugs, concurrency, "touched", move |slug| {
                let (client, me) = (client.clone(), me.clone());
                async move {
                    let status = client
                        .get(&me)
                        .header("host", format!("{slug}.localhost"))
                        .send()
                        .await?
                        .status();
                    anyhow::ensure!(status.as_u16() == 401, "{slug}: {status}");
                    Ok(())
                }
            })
            .await?;
        }
        Command::DropPostgres { server, databases } => {
            use sqlx::{Connection, Executor};
            let mut admin = sqlx::PgConnection::connect(&server).await?;
            for name in lines(&databases)? {
                anyhow::ensure!(
                    name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                    "not a database name: {name:?}"
                );
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
                admin
                    .execute(format!("DROP ROLE IF EXISTS {name}").as_str())
                    .await?;
            }
        }
        Command::Provision {
            admin,
            token_env,
            tenants,
            email,
            password_env,
            concurrency,
            databases_out,
        } => {
            let token = env(&token_env)?;
            let made = Arc::new(std::sync::Mutex::new(Vec::new()));
            let names = made.clone();
            let password = env(&password_env)?;
            let url = format!("{}/admin/v1/tenants", admin.trim_end_matches('/'));
            let rows = lines(&tenants)?;
            let started = Instant::now();
            for_each(rows, concurrency, "provisioned", move |row| {
                let (client, url, token, email, password, names) = (
                    client.clone(),
                    url.clone(),
                    token.clone(),
                    email.clone(),
                    password.clone(),
                    names.clone(),
                );
                async move {
                    let mut words = row.split_whitespace();
                    let (slug, plan, owner) = (
                        words.next().unwrap_or_default(),
                        words.next().unwrap_or("free"),
                        words.next() == Some("owner"),
                    );
                    let mut body = json!({ "slug": slug, "plan": plan });
                    if owner {
                        body["owner_email"] = json!(email);
                        body["owner_password"] = json!(password);
                    }
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await?;
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    anyhow::ensure!(
                        status.as_u16() == 201,
                        "provisioning {slug}: {status} {text}"
                    );
                    let tenant: Value = serde_json::from_str(&text)?;
                    if let Some(database) = tenant["database"].as_str() {
                        names.lock().unwrap().push(database.to_owned());
                    }
                    Ok(())
                }
            })
            .await?;
            eprintln!(
                "bench_setup: provisioned in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            if let Some(out) = databases_out {
                let names = std::mem::take(&mut *made.lock().unwrap());
                std::fs::write(out, names.join("\n") + "\n")?;
            }
        }
        Command::Prepare {
            url,
            slugs,
            email,
            password_env,
            projects,
            concurrency,
            out,
        } => {
            let password = env(&password_env)?;
            let base = url.trim_end_matches('/').to_owned();
            let slugs: Vec<String> = lines(&slugs)?
                .iter()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect();
            let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
            let collected = tokens.clone();
            for_each(slugs, concurrency, "prepared", move |slug| {
                let (client, base, email, password, tokens) = (
                    client.clone(),
                    base.clone(),
                    email.clone(),
                    password.clone(),
                    collected.clone(),
                );
                async move {
                    let host = format!("{slug}.localhost");
                    let login: Value = client
                        .post(format!("{base}/v1/auth/login"))
                        .header("host", &host)
                        .json(&json!({ "email": email, "password": password }))
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    let token = login["access_token"]
                        .as_str()
                        .ok_or_else(|| anyhow::anyhow!("{slug}: no access_token"))?
                        .to_owned();
                    for n in 1..=projects {
                        client
                            .post(format!("{base}/v1/projects"))
                            .header("host", &host)
                            .bearer_auth(&token)
                            .json(&json!({
                                "name": format!("Project {n}"),
                                "description": format!("Benchmark project {n} of {slug}"),
                            }))
                            .send()
                            .await?
                            .error_for_status()?;
                    }
                    tokens.lock().unwrap().push(format!("{host}\t{token}"));
                    Ok(())
                }
            })
            .await?;
            let mut lines = std::mem::take(&mut *tokens.lock().unwrap());
            lines.sort();
            std::fs::write(&out, lines.join("\n") + "\n")?;
        }
    }
    Ok(())
}

/// Runs `work` on every item, `concurrency` at a time; stops at the first error. Reports
/// progress on stderr every 1,000 items.
async fn for_each<F, Fut>(
    items: Vec<String>,
    concurrency: usize,
    verb: &'static str,
    work: F,
) -> anyhow::Result<()>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let total = items.len();
    let items = Arc::new(items);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (items, next, done, work) = (items.clone(), next.clone(), done.clone(), work.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else {
                    return anyhow::Ok(());
                };
                work(item.clone()).await?;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 1000 == 0 || n == total {
                    eprintln!("bench_setup: {verb} {n}/{total}");
                }
            }
        });
    }
    while let Some(result) = workers.join_next().await {
        result??;
    }
    Ok(())
}
