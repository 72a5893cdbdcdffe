//! Every lifecycle run on a tenant (backup, restore, clone, move) is recorded in the registry
//! as it starts and as it ends, whichever front end started it, so an operator can see later
//! what was done to a tenant, when, and why a run failed (`GET /admin/v1/tenants/{slug}/runs`,
//! `silo tenant runs`).

use std::future::Future;

use serde_json::{Map, Value};

use crate::{clock, error::Result, registry::LifecycleRun, state::AppState, tenant::TenantId};

/// Runs `work` as a run of `kind` on the tenant `tenant_id` (`slug`), recorded with what was `asked` and, once it
/// ends, what `work` reports beside its result, or its error. A run that cannot be recorded
/// is not started; an end that cannot be recorded is logged, and the result stands.
pub async fn recorded<T>(
    state: &AppState,
    kind: &str,
    tenant_id: TenantId,
    slug: &str,
    asked: Value,
    work: impl Future<Output = Result<(T, Value)>>,
) -> Result<T> {
    let run = LifecycleRun {
        id: uuid::Uuid::now_v7().to_string(),
        kind: kind.to_owned(),
        tenant_id: tenant_id.to_string(),
        slug: slug.to_owned(),
        status: "running".into(),
        detail: asked.clone(),
        error: None,
        started_at: clock::now_ms(),
        finished_at: None,
    };
    state.registry.insert_lifecycle_run(&run).await?;
    let outcome = work.await;
    let mut detail = match asked {
        Value::Object(asked) => asked,
        _ => Map::new(),
    };
    let error = match &outcome {
        Ok((_, Value::Object(reported))) => {
            detail.extend(reported.clone());
            None
        }
        Ok(_) => None,
        Err(error) => Some(error.detail()),
    };
    let ended = state
        .registry
        .finish_lifecycle_run(&run.id, error.as_deref(), &Value::Object(detail))
        .await;
    if let Err(recording) = ended {
        tracing::warn!(run = %run.id, error = %recording, "the end of a lifecycle run was not recorded");
    }
    match &error {
        Some(error) => {
            tracing::warn!(run = %run.id, kind, tenant = slug, %error, "lifecycle run failed")
        }
        None => tracing::info!(run = %run.id, kind, tenant = slug, "lifecycle run succeeded"),
    }
    outcome.map(|(value, _)| value)
}

/// The tenant's runs, newest first.
pub async fn runs(state: &AppState, slug: &str, limit: u32) -> Result<Vec<LifecycleRun>> {
    let tenant = super::lifecycle::find(state, slug).await?;
    state.registry.lifecycle_runs(&tenant, limit).await
}
