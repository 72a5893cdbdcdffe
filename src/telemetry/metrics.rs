//! Prometheus metrics, one registry per `AppState` (no global recorder, so a test process can
//! run many silos). Labels are bounded: route templates, methods, status codes, server names,
//! outcomes. There are no per-tenant labels, whose number would grow with the customer base.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    listener: &'static str,
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

/// Connections held towards one server against its budget, read when metrics are scraped.
pub struct ServerConnections {
    pub server: String,
    pub held: u64,
    /// What open (and closing) pools may hold: each reserves its full size.
    pub reserved: u64,
    pub budget: u64,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: Family<HttpLabels, Histogram>,
    registry_lookups: Counter,
    registry_hits: Counter,
    registry_misses: Counter,
    pools_open: Gauge,
    pools_opened: Counter,
    connections: Family<ServerLabels, Gauge<u64, AtomicU64>>,
    budget: Family<ServerLabels, Gauge<u64, AtomicU64>>,
    reserved: Family<ServerLabels, Gauge<u64, AtomicU64>>,
    budget_waits: Family<ServerLabels, Counter>,
    budget_evictions: Family<ServerLabels, Counter>,
    rate_limited: Counter,
    provisioning: Family<OutcomeLabels, Counter>,
    provisioning_phases: Family<PhaseLabels, Histogram>,
    migrations: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("silo");
        let requests = Family::<HttpLabels, Counter>::default();
        let latency = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            // 0.25 ms to about 8 s.
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        let metrics = Self {
            requests,
            latency,
            registry_lookups: Counter::default(),
            registry_hits: Counter::default(),
            registry_misses: Counter::default(),
            pools_open: Gauge::default(),
            pools_opened: Counter::default(),
            connections: Family::default(),
            budget: Family::default(),
            reserved: Family::default(),
            budget_waits: Family::default(),
            budget_evictions: Family::default(),
            rate_limited: Counter::default(),
            provisioning: Family::default(),
            provisioning_phases: Family::new_with_constructor(|| {
                // 0.1 ms to about 3 s.
                Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
            }),
            migrations: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by listener, route and status",
            metrics.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by listener, route and status",
            metrics.latency.clone(),
        );
        registry.register(
            "registry_lookups",
            "Tenant registry lookups (slug or domain)",
            metrics.registry_lookups.clone(),
        );
        registry.register(
            "registry_cache_hits",
            "Registry lookups answered by the cache",
            metrics.registry_hits.clone(),
        );
        registry.register(
            "registry_cache_misses",
            "Registry lookups the cache could not answer (a registry query)",
            metrics.registry_misses.clone(),
        );
        registry.register(
            "tenant_pools_open",
            "Tenant pools open on this router",
            metrics.pools_open.clone(),
        );
        registry.register(
            "tenant_pools_opened",
            "Tenant pools opened since start",
            metrics.pools_opened.clone(),
        );
        registry.register(
            "server_connections",
            "Connections held towards each server",
            metrics.connections.clone(),
        );
        registry.register(
            "server_connection_budget",
            "Connection budget towards each server",
            metrics.budget.clone(),
        );
        registry.register(
            "server_connections_reserved",
            "Connections reserved towards each server by open and closing tenant pools",
            metrics.reserved.clone(),
        );
        registry.register(
            "server_budget_waits",
            "Tenant pool opens that waited because the server's connection budget was full",
            metrics.budget_waits.clone(),
        );
        registry.register(
            "server_budget_evictions",
            "Idle tenant pools closed to make room in the server's connection budget",
            metrics.budget_evictions.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a tenant's rate or concurrency limit",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "provisioning",
            "Provisioning runs by outcome",
            metrics.provisioning.clone(),
        );
        registry.register(
            "provisioning_phase_duration_seconds",
            "Time provisioning runs spent in each phase (registry, lock, database, schema, seed, owner_hash, owner)",
            metrics.provisioning_phases.clone(),
        );
        registry.register(
            "tenant_migrations",
            "Tenant database migrations by outcome",
            metrics.migrations.clone(),
        );
        // Listed at 0 before the first run, so a rate or an alert on failures has a series.
        for outcome in ["ok", "failed"] {
            let _ = metrics
                .provisioning
                .get_or_create(&OutcomeLabels { outcome });
            let _ = metrics.migrations.get_or_create(&OutcomeLabels { outcome });
        }
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    pub fn observe_request(
        &self,
        listener: &'static str,
        method: &'static str,
        route: &'static str,
        status: u16,
        seconds: f64,
    ) {
        // Static labels: finding the series allocates nothing.
        let labels = HttpLabels {
            listener,
            method,
            route,
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// A request path lookup, answered by the cache (`hit`) or by a registry query.
    pub fn registry_lookup(&self, hit: bool) {
        self.registry_lookups.inc();
        if hit {
            self.registry_hits.inc();
        } else {
            self.registry_misses.inc();
        }
    }

    pub fn pool_opened(&self) {
        self.pools_opened.inc();
    }

    pub fn budget_wait(&self, server: &str) {
        self.budget_waits
            .get_or_create(&ServerLabels {
                server: server.to_owned(),
            })
            .inc();
    }

    pub fn budget_eviction(&self, server: &str) {
        self.budget_evictions
            .get_or_create(&ServerLabels {
                server: server.to_owned(),
            })
            .inc();
    }

    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    pub fn provisioned(&self, ok: bool) {
        self.provisioning
            .get_or_create(&OutcomeLabels {
                outcome: if ok { "ok" } else { "failed" },
            })
            .inc();
    }

    pub fn provisioning_phase(&self, phase: &'static str, seconds: f64) {
        self.provisioning_phases
            .get_or_create(&PhaseLabels { phase })
            .observe(seconds);
    }

    pub fn tenant_migrated(&self, ok: bool) {
        self.migrations
            .get_or_create(&OutcomeLabels {
                outcome: if ok { "ok" } else { "failed" },
            })
            .inc();
    }

    /// The text exposition, with gauges read just now.
    pub fn render(&self, pools_open: u64, servers: &[ServerConnections]) -> String {
        self.pools_open.set(pools_open as i64);
        for server in servers {
            let labels = ServerLabels {
                server: server.server.clone(),
            };
            self.connections.get_or_create(&labels).set(server.held);
            self.budget.get_or_create(&labels).set(server.budget);
            self.reserved.get_or_create(&labels).set(server.reserved);
            // Listed at 0 before the first event, so a dashboard sees every server.
            let _ = self.budget_waits.get_or_create(&labels);
            let _ = self.budget_evictions.get_or_create(&labels);
        }
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
