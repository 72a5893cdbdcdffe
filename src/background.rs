//! Work that must finish even when the request that started it goes away (a client that
//! disconnects, a request timeout): provisioning, deletion, migration runs. Shutdown waits for
//! it within the grace period.

use std::{future::Future, sync::Mutex, time::Duration};

use tokio::task::JoinSet;
use tracing::Instrument;

use crate::error::{Error, Result};

#[derive(Default)]
pub struct Background {
    tasks: Mutex<JoinSet<()>>,
}

impl Background {
    /// Runs `work` to completion in its own task, inside the caller's span: its log lines
    /// carry the request id and route of the request that started it.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(work.instrument(tracing::Span::current()));
    }

    /// Runs `work` in its own task and waits for its result. If the caller is dropped, the
    /// work still finishes: a tenant is never left half-made because a client hung up.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.spawn(async move {
            let _ = done.send(work.await);
        });
        result.await.map_err(|_| {
            Error::Internal(anyhow::anyhow!(
                "background work stopped before it finished"
            ))
        })
    }

    /// Waits up to `grace` for running work; false if some was still running then.
    pub async fn wait(&self, grace: Duration) -> bool {
        let mut tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_finishes_even_when_its_caller_is_dropped() {
        let background = std::sync::Arc::new(Background::default());
        let (finished_tx, finished_rx) = tokio::sync::oneshot::channel();
        let caller = {
            let background = background.clone();
            tokio::spawn(async move {
                background
                    .run(async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let _ = finished_tx.send(());
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        caller.abort();
        assert!(background.wait(Duration::from_secs(2)).await);
        assert!(finished_rx.await.is_ok(), "the work ran to its end");
    }
}
