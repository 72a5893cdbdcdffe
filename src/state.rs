//! `AppState`: every long-lived handle, built once from `Settings`, cheap to clone. The server,
//! the CLI and the tests all build it the same way.

use std::{ops::Deref, sync::Arc, time::Duration};

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::{
    backend::Servers,
    background::Background,
    config::Settings,
    database::PoolShape,
    identity::{AccessTokens, ApiTokens, PasswordHasher, RefreshTokens},
    limits::TenantLimits,
    plans::Plans,
    pool::{Budgets, PoolPolicy, TenantPools},
    registry::{Registry, RegistryStore},
    resolve::Resolver,
    schema::TenantSchema,
    secrets::Secrets,
    telemetry::{Metrics, ServerConnections},
};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    pub resolver: Resolver,
    pub registry: Arc<Registry>,
    pub servers: Arc<Servers>,
    pub pools: TenantPools,
    pub plans: Plans,
    pub passwords: PasswordHasher,
    pub access_tokens: AccessTokens,
    /// The master keys: what rotations move tenants to (the current one) and off.
    pub secrets: Secrets,
    pub refresh_tokens: RefreshTokens,
    pub api_tokens: ApiTokens,
    pub limits: TenantLimits,
    /// The tenant migrations this silo runs with (built in, or `migrations.dir`).
    pub schema: Arc<TenantSchema>,
    pub background: Background,
    pub metrics: Arc<Metrics>,
    /// Requests served by tenant, and the sizes the `max_database_bytes` quota is checked on.
    pub usage: crate::usage::Usage,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data_dir {}", settings.data_dir.display()))?;
        let secrets = Secrets::load(
            settings.secrets.master_key.expose_secret(),
            &settings.data_dir,
        )?
        .with_previous(
            settings
                .secrets
                .previous_master_keys
                .iter()
                .map(|key| key.expose_secret().as_bytes().to_vec()),
        );
        let servers = Arc::new(
            Servers::from_settings(
                &settings.servers,
                &secrets,
                settings.pool.max_connections_per_tenant,
            )
            .map_err(anyhow::Error::msg)?,
        );
        let plans = Plans::load(&settings.templates_dir)?;
        let store = RegistryStore::open(&settings.registry_url()).await?;
        let metrics = Arc::new(Metrics::default());
        let ttl = Duration::from_secs(settings.registry.cache_ttl_secs);
        let registry = Arc::new(
            Registry::new(store, ttl, metrics.clone())
                .with_webhooks(settings.webhooks.urls.clone()),
        );
        // Rows from before key ids were recorded can only be under the one key silo had then;
        // with a single key configured it is that one, so it is named before any roll starts.
        if secrets.previous_key_ids().next().is_none() {
            let named = registry.name_unnamed_keys(secrets.key_id()).await?;
            if named > 0 {
                tracing::info!(
                    tenants = named,
                    key = secrets.key_id(),
                    "recorded the master key of tenants from before key ids"
                );
            }
        }
        let shape = PoolShape {
            max_connections: settings.pool.max_connections_per_tenant,
            acquire_timeout: Duration::from_millis(settings.pool.acquire_timeout_ms),
            idle_timeout: Some(
                crate::database::CONNECTION_IDLE_TIMEOUT
                    .min(Duration::from_secs(settings.pool.idle_ttl_secs)),
            ),
        };
        let schema = Arc::new(
            TenantSchema::load(&settings.migrations.dir)
                .map_err(|message| anyhow::anyhow!("migrations.dir: {message}"))?,
        );
        let pools = TenantPools::new(
            servers.clone(),
            Budgets::from_settings(&settings.servers),
            registry.clone(),
            metrics.clone(),
            schema.clone(),
            PoolPolicy {
                shape,
                idle_ttl: Duration::from_secs(settings.pool.idle_ttl_secs),
                migrate_on_open: settings.migrations.on_open,
            },
        );
        let inner = Inner {
            resolver: Resolver::new(&settings.resolve.strategies, &settings.resolve.base_domain),
            passwords: PasswordHasher::new(&settings.auth)?,
            access_tokens: AccessTokens::new(secrets.clone(), settings.auth.access_ttl_secs),
            secrets,
            refresh_tokens: RefreshTokens::new(settings.auth.refresh_ttl_secs),
            api_tokens: ApiTokens::default(),
            limits: TenantLimits::default(),
            schema,
            background: Background::default(),
            metrics,
            usage: crate::usage::Usage::default(),
            registry,
            servers,
            pools,
            plans,
            settings,
        };
        Ok(Self(Arc::new(inner)))
    }

    /// The Prometheus text for `/metrics`, gauges read now.
    pub fn render_metrics(&self) -> String {
        let held = self.pools.connections_by_server();
        let reserved = self.pools.reserved_by_server();
        let servers: Vec<ServerConnections> = self
            .settings
            .servers
            .iter()
            .map(|(name, server)| ServerConnections {
                server: name.clone(),
                held: held.get(name).copied().unwrap_or(0),
                reserved: reserved.get(name).copied().unwrap_or(0),
                budget: u64::from(server.max_connections),
            })
            .collect();
        self.metrics.render(self.pools.open_count(), &servers)
    }

    /// Closes every tenant pool and the registry (shutdown, end of a CLI command).
    pub async fn close(&self) {
        self.usage.flush(&self.registry).await;
        self.pools.close_all().await;
        self.registry.close().await;
    }

    /// A state on the shipped defaults, its files under `dir`, for unit tests.
    #[cfg(test)]
    pub(crate) async fn for_tests(dir: &std::path::Path) -> Self {
        let mut settings: Settings = serde_json::from_value(serde_json::json!({})).unwrap();
        settings.data_dir = dir.join("data");
        settings.servers.get_mut("local").unwrap().url =
            format!("sqlite://{}", dir.join("tenants").display());
        settings.secrets.master_key = "unit-test-master-key-0123456789ab".into();
        settings.validate().unwrap();
        Self::build(settings).await.unwrap()
    }
}
