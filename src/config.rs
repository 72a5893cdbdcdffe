//! Settings: the shipped `config.toml`, then `SILO__SECTION__KEY` environment variables, then
//! `validate()`. A bad value is reported with the key that holds it.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

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
    /// `sqlite://<directory>` (one file per tenant) or, later, `postgres://...`. Required,
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
        Self { on_open: true }
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
    /// Reads `path` (or `config.toml` when it exists), then `SILO__` variables, then validates.
    pub fn load(path: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        // Names what was wrong when the config crate names no key (a TOML syntax error, say).
        let file = match path {
            Some(path) => path.to_str().unwrap_or("--config"),
            None => "config.toml",
        };
        match path {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::new(
                        "--config",
                        format!("{} not found", path.display()),
                    ));
                }
                builder =
                    builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
            }
            None => {
                builder = builder.add_source(
                    config::File::with_name("config.toml")
                        .format(config::FileFormat::Toml)
                        .required(false),
                );
            }
        }
        // Values from the environment stay text, as written: a token or a key that looks like a
        // number ("007", "1e3") is used byte for byte, and numeric keys still read whole numbers
        // and booleans from text. Only the list keys are split, at commas.
        let env = config::Environment::with_prefix("SILO")
            .prefix_separator("__")
            .separator("__");
        let mut builder = builder.add_source(env);
        for (key, value) in list_overrides() {
            builder = builder
                .set_override(key, value)
                .map_err(|e| ConfigError::new(key, e.to_string()))?;
        }
        let config = builder.build().map_err(|e| {
            ConfigError::new(
                error_key(&e).unwrap_or_else(|| file.to_owned()),
                e.to_string(),
            )
        })?;
        let raw: config::Value = config
            .clone()
            .try_deserialize()
            .map_err(|e| ConfigError::new(file, e.to_string()))?;
        no_fractions(String::new(), &raw)?;
        let mut settings: Settings = config.try_deserialize().map_err(|e| {
            let key = error_key(&e).unwrap_or_else(|| file.to_owned());
            ConfigError::new(key, e.to_string())
        })?;
        // `SILO__SERVERS__LOCAL__MAX_CONNECTIONS` alone keeps the default server's directory.
        if let Some(local) = settings.servers.get_mut("local") {
            if local.url.is_empty() {
                local.url = defaults::LOCAL_SERVER_URL.to_owned();
            }
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: ranges, listen addresses, known strategies, server URLs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, addr) in [
            ("http.listen", &self.http.listen),
            ("admin.listen", &self.admin.listen),
        ] {
            addr.parse::<SocketAddr>().map_err(|_| {
                ConfigError::new(
                    key,
                    format!("{addr:?} is not an address like 127.0.0.1:8080"),
                )
            })?;
        }
        positive("http.body_limit_bytes", self.http.body_limit_bytes as u64)?;
        positive("http.request_timeout_secs", self.http.request_timeout_secs)?;
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return Err(ConfigError::new(
                "log.format",
                "must be \"pretty\" or \"json\"",
            ));
        }
        if !is_log_filter(&self.log.level) {
            return Err(ConfigError::new(
                "log.level",
                format!(
                    "{:?} is not a level (error, warn, info, debug, trace) or a filter like \"info,silo=debug\"",
                    self.log.level
                ),
            ));
        }
        if self.resolve.strategies.is_empty() {
            return Err(ConfigError::new(
                "resolve.strategies",
                "needs at least one strategy",
            ));
        }
        for strategy in &self.resolve.strategies {
            crate::resolve::Strategy::parse(strategy).ok_or_else(|| {
                ConfigError::new(
                    "resolve.strategies",
                    format!(
                        "unknown strategy {strategy:?} (custom_domain, subdomain, header, path)"
                    ),
                )
            })?;
        }
        if self.resolve.base_domain.trim().is_empty() {
            return Err(ConfigError::new("resolve.base_domain", "must not be empty"));
        }
        if !self.registry.url.is_empty() && !self.registry.url.starts_with("sqlite:") {
            return Err(ConfigError::new(
                "registry.url",
                "only SQLite registries are supported in this version (leave it empty for <data_dir>/control.db)",
            ));
        }
        positive("registry.cache_ttl_secs", self.registry.cache_ttl_secs)?;
        if self.servers.is_empty() {
            return Err(ConfigError::new(
                "servers",
                "at least one [servers.<name>] is needed",
            ));
        }
        for (name, server) in &self.servers {
            crate::pool::Server::parse(name, server)
                .map_err(|message| ConfigError::new(format!("servers.{name}.url"), message))?;
        }
        positive(
            "pool.max_connections_per_tenant",
            self.pool.max_connections_per_tenant.into(),
        )?;
        for (name, server) in &self.servers {
            let key = format!("servers.{name}.max_connections");
            positive(&key, server.max_connections.into())?;
            // Every tenant pool reserves its full size from the budget: a smaller budget could
            // never open a single pool, and every tenant on the server would answer 503.
            if server.max_connections < self.pool.max_connections_per_tenant {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "must be at least pool.max_connections_per_tenant ({}): each tenant pool reserves that many",
                        self.pool.max_connections_per_tenant
                    ),
                ));
            }
        }
        positive("pool.idle_ttl_secs", self.pool.idle_ttl_secs)?;
        positive("pool.acquire_timeout_ms", self.pool.acquire_timeout_ms)?;
        positive("auth.access_ttl_secs", self.auth.access_ttl_secs)?;
        positive("auth.refresh_ttl_secs", self.auth.refresh_ttl_secs)?;
        argon2::Params::new(
            self.auth.argon2_memory_kib,
            self.auth.argon2_iterations,
            self.auth.argon2_parallelism,
            None,
        )
        .map_err(|e| {
            ConfigError::new(
                "auth.argon2_memory_kib",
                format!("invalid argon2 parameters: {e}"),
            )
        })?;
        // An Authorization header loses surrounding blanks, so such a token could never match.
        let token = self.admin.token.expose_secret();
        if token.trim() != token {
            return Err(ConfigError::new(
                "admin.token",
                "must not be blank or start or end with whitespace (leave it empty to turn the admin API off)",
            ));
        }
        let key = self.secrets.master_key.expose_secret();
        if !key.is_empty() && key.chars().count() < 32 {
            return Err(ConfigError::new(
                "secrets.master_key",
                "must be at least 32 characters",
            ));
        }
        Ok(())
    }

    /// The control registry's database URL.
    pub fn registry_url(&self) -> String {
        if self.registry.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("control.db").display())
        } else {
            self.registry.url.clone()
        }
    }
}

fn positive(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(key, "must be greater than 0"));
    }
    Ok(())
}

/// The config crate puts the key inside its message; pull it out for the `key` field.
fn error_key(error: &config::ConfigError) -> Option<String> {
    let text = error.to_string();
    for (opening, closing) in [
        ("for key `", '`'),
        ("unknown field `", '`'),
        ("missing configuration field \"", '"'),
    ] {
        if let Some(start) = text.find(opening) {
            let rest = &text[start + opening.len()..];
            if let Some(end) = rest.find(closing) {
                return Some(rest[..end].to_owned());
            }
        }
    }
    None
}

/// A level (`info`) or a filter of directives (`info,silo=debug`). A bare word must be a level:
/// `tracing` would read `bogus` as a target name and log nothing of silo's.
fn is_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let directives: Vec<&str> = filter.split(',').map(str::trim).collect();
    directives.iter().all(|directive| {
        directive.contains('=') || LEVELS.contains(&directive.to_ascii_lowercase().as_str())
    }) && tracing_subscriber::EnvFilter::try_new(filter).is_ok()
}

/// Every number silo reads is whole (counts, bytes, seconds, milliseconds); the config crate
/// would round `2.7` to 3 without a word, so a fraction anywhere is refused with its key.
fn no_fractions(key: String, value: &config::Value) -> Result<(), ConfigError> {
    match &value.kind {
        config::ValueKind::Float(number) => Err(ConfigError::new(
            key,
            format!("must be a whole number, not {number}"),
        )),
        config::ValueKind::Table(table) => table.iter().try_for_each(|(name, value)| {
            let key = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}.{name}")
            };
            no_fractions(key, value)
        }),
        config::ValueKind::Array(items) => items
            .iter()
            .try_for_each(|item| no_fractions(key.clone(), item)),
        _ => Ok(()),
    }
}

/// The list keys given in the environment, split at commas (`SILO__RESOLVE__STRATEGIES=
/// subdomain,header`); an empty value is an empty list.
fn list_overrides() -> Vec<(&'static str, Vec<String>)> {
    const LISTS: [(&str, &str); 2] = [
        ("resolve.strategies", "SILO__RESOLVE__STRATEGIES"),
        ("resolve.reserved_slugs", "SILO__RESOLVE__RESERVED_SLUGS"),
    ];
    let mut lists = Vec::new();
    for (name, raw) in std::env::vars() {
        for (key, variable) in LISTS {
            if name.eq_ignore_ascii_case(variable) {
                let items = raw
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect();
                lists.push((key, items));
            }
        }
    }
    lists
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
        let printed = format!("{settings:?}");
        assert!(!printed.contains("visible"), "{printed}");
    }
}
