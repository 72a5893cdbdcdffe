//! A silo running in this test, on port 0, with a fresh data directory.

use std::path::PathBuf;

use serde_json::{json, Value};
use silo::{http::RunningServer, AppState, Settings};
use tempfile::TempDir;

use super::{client::Reply, test_registry, TenantClient, TestDatabase};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub admin_addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    pub dir: TempDir,
    server: Option<RunningServer>,
    /// The registry's own PostgreSQL database under `SILO_TEST_REGISTRY=postgres`; dropped last.
    _registry: Option<TestDatabase>,
}

/// Settings for a test: temp directories, free ports, cheap argon2, a fixed master key.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut settings: Settings = serde_json::from_value(json!({})).expect("defaults deserialize");
    settings.data_dir = dir.join("data");
    settings.templates_dir = test_templates(dir);
    settings.http.listen = "127.0.0.1:0".into();
    settings.admin.listen = "127.0.0.1:0".into();
    settings.admin.token = ADMIN_TOKEN.into();
    settings.servers.get_mut("local").unwrap().url = match super::tenant_server_url() {
        Some(url) => url,
        None => format!("sqlite://{}", dir.join("tenants").display()),
    };
    settings.secrets.master_key = "test-master-key-0123456789abcdef-0123456789".into();
    settings.auth.argon2_memory_kib = 1024;
    settings.auth.argon2_iterations = 1;
    settings
}

/// The shipped plans with limits no functional test reaches, plus `tight` for the limit tests
/// (tests of behaviour must not fail for going faster than the free plan allows) and `broken`,
/// whose seed fails.
fn test_templates(dir: &std::path::Path) -> PathBuf {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tenant_templates");
    let templates = dir.join("templates");
    let plans = [
        ("free", "open_signup = true\nrequests_per_second = 100000\nburst = 100000\nmax_concurrent_requests = 1000\n"),
        ("pro", "open_signup = false\nrequests_per_second = 100000\nburst = 100000\nmax_concurrent_requests = 1000\n"),
        ("tight", "open_signup = true\nrequests_per_second = 2\nburst = 3\nmax_concurrent_requests = 2\n"),
        ("broken", "open_signup = true\n"),
    ];
    for (plan, settings) in plans {
        let folder = templates.join(plan);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("plan.toml"), settings).unwrap();
        // `broken`'s seed fails, for the tests of a provisioning that fails part way.
        let seed = match plan {
            "broken" => "INSERT INTO no_such_table (id) VALUES (1);".to_owned(),
            _ => std::fs::read_to_string(shipped.join(plan).join("seed.sql")).unwrap_or_default(),
        };
        std::fs::write(folder.join("seed.sql"), seed).unwrap();
    }
    templates
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns a silo after `adjust` has changed its settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    let registry = test_registry().await;
    if let Some(registry) = &registry {
        settings.registry.url = registry.url.clone();
    }
    adjust(&mut settings);
    settings.validate().expect("test settings are valid");
    let state = AppState::build(settings).await.expect("app state");
    let server = silo::http::start(state.clone())
        .await
        .expect("server starts");
    TestApp {
        addr: server.main_addr,
        admin_addr: server.admin_addr.expect("admin listener is on"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        dir,
        server: Some(server),
        _registry: registry,
    }
}

impl TestApp {
    /// `http://127.0.0.1:<port><path>` on the main listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request on the main listener that names no tenant yet; add headers as needed.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// The database file of a tenant as the admin API shows it.
    pub fn database_file(&self, tenant: &Value) -> PathBuf {
        self.tenants_dir()
            .join(tenant["database"].as_str().expect("database name"))
    }

    /// The database of a tenant as the admin API shows it, on either backend.
    pub fn database(&self, tenant: &Value) -> super::TenantDatabase {
        let name = tenant["database"].as_str().expect("database name");
        super::TenantDatabase::at(&self.tenants_dir(), name)
    }

    /// Where tenant databases live (`servers.local`).
    pub fn tenants_dir(&self) -> PathBuf {
        self.dir.path().join("tenants")
    }

    /// A client for one tenant, addressed by Host `<slug>.localhost`.
    pub fn tenant(&self, slug: &str) -> TenantClient<'_> {
        TenantClient::new(self, slug)
    }

    /// Calls the admin API with the admin token.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        self.admin_with_token(method, path, body, Some(ADMIN_TOKEN))
            .await
    }

    pub async fn admin_with_token(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("http://{}{path}", self.admin_addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await.expect("admin request")).await
    }

    /// Provisions a tenant through the admin API; panics unless it is created.
    pub async fn create_tenant(&self, slug: &str) -> Value {
        let reply = self
            .admin(
                reqwest::Method::POST,
                "/admin/v1/tenants",
                Some(json!({ "slug": slug })),
            )
            .await;
        assert_eq!(reply.status, 201, "creating {slug}: {}", reply.body);
        reply.body
    }

    /// Provisions a tenant with an owner account and signs the owner in.
    pub async fn create_tenant_with_owner(
        &self,
        slug: &str,
        email: &str,
        password: &str,
    ) -> super::Session {
        self.create_tenant_with_owner_and(slug, email, password, json!({}))
            .await
    }

    /// [`TestApp::create_tenant_with_owner`] with more of the request's fields (a `server`,
    /// a `plan`).
    pub async fn create_tenant_with_owner_and(
        &self,
        slug: &str,
        email: &str,
        password: &str,
        fields: Value,
    ) -> super::Session {
        let mut body = json!({ "slug": slug, "owner_email": email, "owner_password": password });
        if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
            body.extend(fields);
        }
        let reply = self
            .admin(reqwest::Method::POST, "/admin/v1/tenants", Some(body))
            .await;
        if reply.status != 201 {
            // What the operator would look at: the tenant's last_error, if it got a row.
            let row = self
                .admin(
                    reqwest::Method::GET,
                    &format!("/admin/v1/tenants/{slug}"),
                    None,
                )
                .await;
            panic!(
                "creating {slug}: {} {}; the tenant: {}",
                reply.status, reply.body, row.body
            );
        }
        self.tenant(slug).login(email, password).await
    }

    /// Puts tenant `slug` in `status` behind the API's back: a status a test cannot reach at
    /// will through it (`provisioning`, `migrating`).
    pub async fn force_status(&self, slug: &str, status: silo::tenant::Status) {
        let record = silo::control::find(&self.state, slug).await.unwrap();
        self.state
            .registry
            .set_status(&record, status, None)
            .await
            .unwrap();
    }

    /// Stops the server as SIGTERM would.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(std::time::Duration::from_secs(5)).await;
        }
    }
}

/// Names in `dir`, sorted; empty when `dir` is missing or not a directory.
pub fn list_dir(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
