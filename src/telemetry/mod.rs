//! Logging and metrics. Logs: pretty on a terminal, JSON when `log.format = "json"`;
//! `RUST_LOG` overrides the level; everything goes to stderr, so CLI output on stdout stays
//! machine-readable. Metrics: see [`Metrics`].

mod exposition;
mod metrics;

pub use exposition::to_prometheus_text;
pub use metrics::{Metrics, ServerConnections};

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogSettings;

/// Installs the global subscriber once; later calls (tests starting many silos) are no-ops.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn", settings.level)));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if settings.format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
