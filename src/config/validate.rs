//! What serde cannot check: ranges, listen addresses, strategies, server URLs, log filters.

use std::net::SocketAddr;

use secrecy::ExposeSecret;

use super::{ConfigError, Settings};

impl Settings {
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
        // Checked before any tenant is touched: names, versions without gaps, built-in ones
        // unchanged.
        crate::schema::TenantSchema::load(&self.migrations.dir)
            .map_err(|message| ConfigError::new("migrations.dir", message))?;
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
        let registry = self.registry.url.trim();
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !registry.is_empty() && !known.iter().any(|scheme| registry.starts_with(scheme)) {
            return Err(ConfigError::new(
                "registry.url",
                "must be sqlite://<file> or postgres://<user>@<host>/<database> (leave it empty for <data_dir>/control.db)",
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
            crate::backend::Server::check(server)
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
            let postgres = server.url.trim().starts_with("postgres");
            if postgres && server.max_connections < 2 {
                return Err(ConfigError::new(
                    key,
                    "must be at least 2 on a PostgreSQL server: provisioning or deleting a tenant holds two connections at once",
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
        for previous in &self.secrets.previous_master_keys {
            if previous.expose_secret().chars().count() < 32 {
                return Err(ConfigError::new(
                    "secrets.previous_master_keys",
                    "each key must be at least 32 characters",
                ));
            }
        }
        if !self.secrets.previous_master_keys.is_empty() && key.is_empty() {
            return Err(ConfigError::new(
                "secrets.master_key",
                "must be set when secrets.previous_master_keys is: it is the key they roll to",
            ));
        }
        self.validate_webhooks()
    }

    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let webhooks = &self.webhooks;
        for (at, raw) in webhooks.urls.iter().enumerate() {
            let key = format!("webhooks.urls[{at}]");
            check_webhook_url(raw).map_err(|message| ConfigError::new(&key, message))?;
            if webhooks.urls[..at].contains(raw) {
                return Err(ConfigError::new(key, "is listed twice"));
            }
        }
        let secret = webhooks.secret.expose_secret();
        if !webhooks.urls.is_empty() && secret.is_empty() {
            return Err(ConfigError::new(
                "webhooks.secret",
                "is required when webhooks.urls is set: receivers check X-Silo-Signature with it (set SILO__WEBHOOKS__SECRET)",
            ));
        }
        if !secret.is_empty() && secret.chars().count() < 16 {
            return Err(ConfigError::new(
                "webhooks.secret",
                "must be at least 16 characters",
            ));
        }
        if secret.trim() != secret {
            return Err(ConfigError::new(
                "webhooks.secret",
                "must not start or end with whitespace",
            ));
        }
        positive("webhooks.timeout_ms", webhooks.timeout_ms)?;
        positive("webhooks.retry_initial_ms", webhooks.retry_initial_ms)?;
        positive("webhooks.poll_interval_ms", webhooks.poll_interval_ms)?;
        if webhooks.retry_max_ms < webhooks.retry_initial_ms {
            return Err(ConfigError::new(
                "webhooks.retry_max_ms",
                format!(
                    "must be at least webhooks.retry_initial_ms ({})",
                    webhooks.retry_initial_ms
                ),
            ));
        }
        Ok(())
    }
}

/// A receiver silo can POST to: `http://` or `https://` with a host. The message never
/// repeats the URL, which may hold a credential.
fn check_webhook_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| format!("is not a URL ({e}); expected http(s)://host[:port]/path"))?;
    if raw.trim() != raw {
        return Err("must not start or end with whitespace".into());
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http:// or https:// URL, not {}:",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".into());
    }
    Ok(())
}

fn positive(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(key, "must be greater than 0"));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_is_http_or_https_with_a_host() {
        for good in [
            "http://127.0.0.1:9000/hooks",
            "https://hooks.example.com/silo?x=1",
            "http://user:pass@example.com/",
        ] {
            assert!(check_webhook_url(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "example.com/hooks",
            "ftp://example.com/",
            "file:///tmp/x",
            "http://",
            " http://example.com/",
            "http://example.com/#x",
        ] {
            assert!(check_webhook_url(bad).is_err(), "{bad:?}");
        }
        let message = check_webhook_url("ftp://u:hunter2@example.com/").unwrap_err();
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn a_log_level_is_a_level_or_a_filter_of_directives() {
        for good in [
            "info",
            "WARN",
            "off",
            "info,silo=debug",
            "warn,sqlx=off",
            "silo=trace",
        ] {
            assert!(is_log_filter(good), "{good}");
        }
        for bad in ["", " ", "bogus", "info,,", "info,bogus", "silo=loud"] {
            assert!(!is_log_filter(bad), "{bad}");
        }
    }
}
