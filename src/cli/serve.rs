//! `silo serve`: run both listeners until SIGTERM or Ctrl-C, then shut down gracefully.

use std::time::Duration;

use super::Outcome;
use crate::{config::Settings, error::Result, http, state::AppState};

pub async fn run(settings: Settings) -> Result<Outcome> {
    let grace = Duration::from_secs(settings.http.shutdown_grace_secs);
    let state = AppState::build(settings).await?;
    let server = http::start(state).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    server.shutdown(grace).await;
    Ok(Outcome::Success)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
