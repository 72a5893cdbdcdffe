//! Settings: the shipped `config.toml`, then `SILO__SECTION__KEY` environment variables, then
//! `validate()`. A bad value is reported with the key that holds it.

use std::{collections::BTreeMap, path::PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

mod load;
mod validate;

/// Everything silo can be told. Field names are the config keys of the API contract.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Embedded default: `control.db` lives here, and the development master key.
    #[serde(default = "defaults::data_dir")]
    pub data_dir: PathBuf,
    /// Where plan templates (`<plan>/plan.toml`, `<plan>/seed.sql`) are read from.
    #[serde(default = "defaults::templates_dir")]
    pub templates_dir: PathBuf,
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub resolve: ResolveSettings,
    #[serde(default)]
    pub registry: RegistrySettings,
    #[serde(default = "defaults::servers")]
    pub servers: BTreeMap<String, ServerSettings>,
    #[serde(default)]
    pub pool: PoolSettings,
    #[serde(default)]
    pub migrations: MigrationSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub secrets: SecretSettings,
    #[serde(default)]
    pub webhooks: WebhookSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub listen: String,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `pretty` or `json`.
    pub format: String,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    pub listen: String,
    /// Empty: the admin listener is off. Never printed (`Debug` shows it redacted).
    pub token: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResolveSettings {
    pub base_domain: String,
    pub strategies: Vec<String>,
    pub reserved_slugs: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySettings {
    /// Empty: SQLite at `<data_dir>/control.db`.
    pub url: String,
    pub cache_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// `sqlite://<directory>` (one file per tenant) or `postgres://<admin>@<host>/<db>` (a
    /// database and a role per tenant). Required,
    /// except for `local`, which defaults to `sqlite://data/tenants`.
    #[serde(default)]
    pub url: String,
    /// Connection budget towards this server: at least `pool.max_connections_per_tenant`,
    /// as every tenant pool reserves its full size from it.
    #[serde(default = "defaults::server_max_connections")]
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSettings {
    pub max_connections_per_tenant: u32,
    pub idle_ttl_secs: u64,
    pub acquire_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrationSettings {
    /// Bring a tenant's schema up to date when its pool opens.
    pub on_open: bool,
    /// A folder of tenant migrations to use instead of the built-in ones (empty: built-in), so
    /// operators roll a migration out without a new binary. See `schema::TenantSchema`.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// argon2id passes (OWASP: 2).
    pub argon2_iterations: u32,
    /// argon2id lanes (OWASP: 1).
    pub argon2_parallelism: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretSettings {
    /// At least 32 characters; empty: a development key is generated in `data_dir`.
    /// Never printed (`Debug` shows it redacted).
    pub master_key: SecretString,
    /// Master keys being rolled off: tenants whose credentials still use one keep working
    /// until `silo keys rotate` has moved them to `master_key`; then remove them.
    pub previous_master_keys: Vec<SecretString>,
}

/// Lifecycle webhooks (`src/webhooks/`): off while `urls` is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Receivers (`http://` or `https://`); every event goes to each.
    pub urls: Vec<String>,
    /// The HMAC-SHA256 key of `X-Silo-Signature`; required with `urls`, at least 16
    /// characters. Never printed (`Debug` shows it redacted).
    pub secret: SecretString,
    /// Milliseconds an attempt may take before it counts as failed.
    pub timeout_ms: u64,
    /// Attempts before a delivery is given up (`failed`); 0: tried until delivered.
    pub max_attempts: u32,
    /// Milliseconds before the first retry; each later pause doubles, up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// Milliseconds between looks at the outbox (this router's own events wake it at once).
    pub poll_interval_ms: u64,
}

mod defaults {
    use super::*;

    pub fn data_dir() -> PathBuf {
        "data".into()
    }
    pub fn templates_dir() -> PathBuf {
        "tenant_templates".into()
    }
    pub fn server_max_connections() -> u32 {
        200
    }
    /// Where the default server `local` keeps tenant databases.
    pub const LOCAL_SERVER_URL: &str = "sqlite://data/tenants";

    pub fn servers() -> BTreeMap<String, ServerSettings> {
        BTreeMap::from([(
            "local".to_owned(),
            ServerSettings {
                url: LOCAL_SERVER_URL.into(),
                max_connections: server_max_connections(),
            },
        )])
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            body_limit_bytes: 1_048_576,
            request_timeout_secs: 30,
            shutdown_grace_secs: 30,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "pretty".into(),
            level: "info".into(),
        }
    }
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8081".into(),
            token: SecretString::default(),
        }
    }
}

impl Default for ResolveSettings {
    fn default() -> Self {
        Self {
            base_domain: "localhost".into(),
            strategies: vec!["custom_domain".into(), "subdomain".into(), "header".into()],
            reserved_slugs: Vec::new(),
        }
    }
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            cache_ttl_secs: 30,
        }
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections_per_tenant: 4,
            idle_ttl_secs: 300,
            acquire_timeout_ms: 5000,
        }
    }
}

impl Default for MigrationSettings {
    fn default() -> Self {
        Self {
            on_open: true,
            dir: PathBuf::new(),
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_ttl_secs: 900,
            refresh_ttl_secs: 2_592_000,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
        }
    }
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            secret: SecretString::default(),
            timeout_ms: 5000,
            max_attempts: 0,
            retry_initial_ms: 1000,
            retry_max_ms: 300_000,
            poll_interval_ms: 1000,
        }
    }
}

/// A configuration problem, named by its key, so `silo` can exit 2 with a useful line.
#[derive(Debug, thiserror::Error)]
#[error("config: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Settings {
    /// The control registry's database URL.
    pub fn registry_url(&self) -> String {
        if self.registry.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("control.db").display())
        } else {
            self.registry.url.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Settings {
        serde_json::from_value(serde_json::json!({})).unwrap()
    }

    #[test]
    fn a_server_budget_must_fit_at_least_one_tenant_pool() {
        let mut settings = defaults();
        settings.pool.max_connections_per_tenant = 4;
        let local = settings.servers.get_mut("local").unwrap();
        local.max_connections = 4;
        assert!(settings.validate().is_ok(), "exactly one pool fits");

        for budget in [3, 0] {
            settings.servers.get_mut("local").unwrap().max_connections = budget;
            let error = settings.validate().expect_err("no pool fits");
            assert_eq!(error.key, "servers.local.max_connections", "{error}");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let mut settings: Settings = serde_json::from_value(serde_json::json!({})).unwrap();
        settings.admin.token = "admin-token-visible-123".into();
        settings.secrets.master_key = "master-key-visible-0123456789abcdef".into();
        settings.webhooks.secret = "webhook-secret-visible-0123456789".into();
        settings.secrets.previous_master_keys = vec!["old-key-visible-0123456789abcdef".into()];
        let printed = format!("{settings:?}");
        assert!(!printed.contains("visible"), "{printed}");
    }
}
