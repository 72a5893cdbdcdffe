//! Binding and running the listeners, and stopping them gracefully: stop accepting, let
//! in-flight requests finish within `http.shutdown_grace_secs`, close every pool.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::state::AppState;

/// Listeners that are up. Tests use the bound addresses (port 0 picks a free port).
pub struct RunningServer {
    pub main_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    state: AppState,
    stop: watch::Sender<bool>,
    tasks: JoinSet<std::io::Result<()>>,
}

/// Binds the main listener, and the admin listener when `admin.token` is set, and serves them.
pub async fn start(state: AppState) -> anyhow::Result<RunningServer> {
    let settings = &state.settings;
    let main = TcpListener::bind(&settings.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", settings.http.listen))?;
    let admin = if settings.admin.token.expose_secret().is_empty() {
        None
    } else {
        Some(
            TcpListener::bind(&settings.admin.listen)
                .await
                .with_context(|| format!("binding admin.listen {}", settings.admin.listen))?,
        )
    };
    // A router follows the changes the others make (a PostgreSQL registry's notifications).
    state.registry.follow_changes();
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let main_addr = main.local_addr()?;
    tasks.spawn(serve(main, super::app(state.clone()), stopped.clone()));
    let admin_addr = match admin {
        Some(listener) => {
            let addr = listener.local_addr()?;
            tasks.spawn(serve(
                listener,
                super::admin_app(state.clone()),
                stopped.clone(),
            ));
            Some(addr)
        }
        None => None,
    };
    tasks.spawn(crate::webhooks::run(state.clone(), stopped.clone()));
    tasks.spawn(housekeeping(state.clone(), stopped));
    tracing::info!(%main_addr, admin_addr = ?admin_addr, "silo is listening");
    Ok(RunningServer {
        main_addr,
        admin_addr,
        state,
        stop,
        tasks,
    })
}

async fn serve(
    listener: TcpListener,
    app: super::Front,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, axum::ServiceExt::into_make_service(app))
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
        .await
}

/// Closes idle tenant pools, and idle connections of open ones, on time even when no request
/// arrives to trigger moka's upkeep; adds this router's request counts to the registry.
async fn housekeeping(state: AppState, mut stopped: watch::Receiver<bool>) -> std::io::Result<()> {
    let every = Duration::from_secs(state.settings.pool.idle_ttl_secs)
        .min(crate::database::CONNECTION_IDLE_TIMEOUT)
        .div_f32(2.0)
        .clamp(Duration::from_millis(200), Duration::from_secs(30));
    let mut flushed = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every.min(crate::usage::FLUSH_EVERY)) => {
                state.pools.run_housekeeping().await;
                state.passwords.prune();
                if flushed.elapsed() >= crate::usage::FLUSH_EVERY {
                    state.usage.flush(&state.registry).await;
                    flushed = std::time::Instant::now();
                }
            }
            _ = stopped.changed() => return Ok(()),
        }
    }
}

impl RunningServer {
    /// Stops accepting, waits up to `grace` for in-flight requests, then closes every pool.
    pub async fn shutdown(mut self, grace: Duration) {
        let started = std::time::Instant::now();
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "in-flight requests outlived the grace period"
            );
            self.tasks.abort_all();
        }
        let remaining = grace.saturating_sub(started.elapsed());
        if !self.state.background.wait(remaining).await {
            tracing::warn!("provisioning or migration work outlived the grace period");
        }
        self.state.close().await;
        tracing::info!("silo stopped");
    }
}
