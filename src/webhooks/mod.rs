//! Lifecycle webhooks: each tenant lifecycle event is recorded in the registry's outbox with the
//! change it reports, then delivered to every `webhooks.urls` receiver, signed, at least once,
//! in order per tenant, retried with backoff while a receiver is down.

mod deliver;
mod event;
mod sign;

pub use deliver::{backoff, run};
pub use event::{Event, EventType};
pub use sign::signature;

use serde_json::Value;

use crate::{state::AppState, tenant::TenantRecord};

/// Records `kind` about `tenant` for every receiver, after the change it reports has been
/// written (for an event no registry write of this crate records itself, such as
/// `tenant.moved`: call it right after the registry says the tenant moved). `data` is the
/// event's own fields, an object. Never fails the caller: the change stands whatever happens
/// here, so a failure to record is logged (with the tenant and the type), not returned.
pub async fn enqueue(state: &AppState, kind: EventType, tenant: &TenantRecord, data: Value) {
    let event = Event::new(kind, tenant, data);
    if let Err(error) = state.registry.enqueue(event).await {
        tracing::error!(tenant = %tenant.slug, event = %kind, error = %error.detail(), "could not record a webhook event; it will not be delivered");
    }
}
