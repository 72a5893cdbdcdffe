//! PostgreSQL for the tests that need it: a database of its own for each test, on the server at
//! `SILO_TEST_POSTGRES_URL` (default the local one), dropped when the test ends. Where no server
//! answers, [`fresh_database`] says why and gives none, and the test returns; under
//! `SILO_REQUIRE_POSTGRES=1` (CI) it fails instead.

use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

pub struct TestDatabase {
    /// The database's own URL, as silo is configured with it.
    pub url: String,
    name: String,
    admin_url: String,
}

fn admin_url() -> String {
    std::env::var("SILO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` naming database `name` instead of its own.
pub(super) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    format!("{}/{name}{query}", &base[..host_end])
}

/// Whether this run puts every test's registry on PostgreSQL (`SILO_TEST_REGISTRY=postgres`):
/// the suite's backend switch, which `.ci/run` sets for its second pass over the API tests.
pub fn registry_on_postgres() -> bool {
    match std::env::var("SILO_TEST_REGISTRY").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("SILO_TEST_REGISTRY must be sqlite or postgres, not {other:?}"),
    }
}

/// The PostgreSQL server every test's tenant databases go to, when this run puts them there
/// (`SILO_TEST_TENANT_SERVER=postgres://<admin>@<host>/<db>`): the suite's other backend switch.
/// `scripts/test.sh` sets it to a cluster of its own, made for the pass and removed after it.
pub fn tenant_server_url() -> Option<String> {
    std::env::var("SILO_TEST_TENANT_SERVER")
        .ok()
        .filter(|url| !url.is_empty())
}

/// True, with the reason printed, where this run's tenant databases are on PostgreSQL, for a
/// test about SQLite tenant files themselves (descriptors counted for the budget, the file lock
/// of a build, a file in the way, another process's write lock): it returns there. Tests that
/// only look inside a tenant's database use [`super::TenantDatabase`] and run on both. What such a test checks of behaviour, the PostgreSQL tests check on
/// databases and roles (`postgres_tenants`, `placement`, `pools::on_postgres`).
pub fn sqlite_files_only() -> bool {
    let on_postgres = tenant_server_url().is_some();
    if on_postgres {
        eprintln!("skipped on PostgreSQL tenant servers: the test inspects SQLite tenant files");
    }
    on_postgres
}

/// A fresh registry database when [`registry_on_postgres`], else none (the SQLite default).
pub async fn test_registry() -> Option<TestDatabase> {
    if !registry_on_postgres() {
        return None;
    }
    let db = fresh_database().await;
    assert!(
        db.is_some(),
        "SILO_TEST_REGISTRY=postgres, but PostgreSQL is unreachable"
    );
    db
}

/// [`test_registry`] for code that is not async (a thread and a runtime of its own).
pub fn test_registry_blocking() -> Option<TestDatabase> {
    if !registry_on_postgres() {
        return None;
    }
    std::thread::spawn(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test_registry())
    })
    .join()
    .expect("creating a test registry")
}

pub async fn fresh_database() -> Option<TestDatabase> {
    let admin_url = admin_url();
    let connected =
        tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url)).await;
    let mut admin = match connected {
        Ok(Ok(conn)) => conn,
        failed => {
            let reason = match failed {
                Ok(Err(error)) => error.to_string(),
                _ => "timed out".into(),
            };
            assert!(
                std::env::var("SILO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PostgreSQL is required here but unreachable at {admin_url}: {reason}"
            );
            eprintln!("skipped: no PostgreSQL at {admin_url} ({reason})");
            return None;
        }
    };
    let name = format!("silo_test_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("creating a test database");
    let _ = admin.close().await;
    Some(TestDatabase {
        url: with_database(&admin_url, &name),
        name,
        admin_url,
    })
}

impl TestDatabase {
    /// A connection to the server's own database, for what cannot be done from inside this one.
    pub async fn connect_admin(&self) -> PgConnection {
        PgConnection::connect(&self.admin_url)
            .await
            .expect("connecting to the test server")
    }

    /// The database's name (a plain identifier).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection to this database, for a test's own look at it.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("connecting to the test database")
    }
}

impl Drop for TestDatabase {
    /// Dropped on a thread of its own (a test's runtime may be gone or busy), connections and all.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

#[test]
fn a_url_names_another_database() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}
